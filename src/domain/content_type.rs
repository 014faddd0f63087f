//! A declared media type of an upload.

use std::fmt;

use super::ValidationError;

/// A media type such as `image/png` or `text/plain; charset=utf-8`, kept exactly as declared
/// because storage compares the header the client sends with the signed value byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType(String);

impl ContentType {
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let fail = |reason: &str| Err(ValidationError::new("content_type", reason));
        if value.is_empty() || value.len() > 255 {
            return fail("must be 1-255 characters");
        }
        if !value.is_ascii() || value.chars().any(|c| c.is_ascii_control()) {
            return fail("must be printable ASCII");
        }
        match value.parse::<mime::Mime>() {
            Ok(mime) if mime.type_() != mime::STAR && mime.subtype() != mime::STAR => {
                Ok(Self(value.to_owned()))
            }
            Ok(_) => fail("must be a concrete media type, not a wildcard"),
            Err(_) => fail("must be a media type such as image/png"),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_kept_verbatim() {
        for value in [
            "image/png",
            "text/plain; charset=utf-8",
            "application/vnd.api+json",
        ] {
            assert_eq!(ContentType::parse(value).unwrap().as_str(), value);
        }
    }

    #[test]
    fn malformed_media_types_are_rejected() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("png", "no subtype"),
            ("image/*", "a wildcard is not a type of one file"),
            ("*/*", "a wildcard is not a type of one file"),
            ("image/png\r\nx-evil: 1", "header injection"),
            ("imàge/png", "non-ASCII cannot be sent as a header"),
        ];
        for (value, why) in cases {
            assert!(ContentType::parse(value).is_err(), "{value:?}: {why}");
        }
    }
}
