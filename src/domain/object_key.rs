//! The client-chosen name of an asset.

use std::fmt;

use super::ValidationError;

/// Longest object key accepted, in bytes (S3's own limit).
pub const MAX_OBJECT_KEY_BYTES: usize = 1024;

/// A client-chosen key: 1–1024 bytes of UTF-8 without control characters or backslashes,
/// made of non-empty `/`-separated segments none of which is `.` or `..`.
///
/// These rules keep every key a plain relative path, so it can be appended to a storage
/// prefix without escaping it, on S3 and on a file system alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let fail = |reason: &str| Err(ValidationError::new("object_key", reason));
        if value.is_empty() {
            return fail("must not be empty");
        }
        if value.len() > MAX_OBJECT_KEY_BYTES {
            return fail("must be at most 1024 bytes");
        }
        if value.chars().any(char::is_control) {
            return fail("must not contain control characters");
        }
        if value.contains('\\') {
            return fail("must not contain a backslash");
        }
        if value.starts_with('/') {
            return fail("must not start with '/'");
        }
        for segment in value.split('/') {
            match segment {
                "" => return fail("must not contain empty segments ('//' or a trailing '/')"),
                "." | ".." => return fail("must not contain '.' or '..' segments"),
                _ => {}
            }
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment, used as the file name of downloads.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

/// A prefix that object keys can start with (for listings and upload-token scopes): at most
/// 1024 bytes, no control characters (Postgres refuses a NUL in text), no backslash, no
/// leading `/`: a prefix no key could start with is a mistake worth naming. `field` names it.
pub fn parse_key_prefix(field: &str, prefix: String) -> Result<String, ValidationError> {
    let fail = |reason: &str| Err(ValidationError::new(field, reason));
    if prefix.len() > MAX_OBJECT_KEY_BYTES {
        return fail("must be at most 1024 bytes");
    }
    if prefix.chars().any(char::is_control) {
        return fail("must not contain control characters");
    }
    if prefix.contains('\\') || prefix.starts_with('/') {
        return fail("must not contain a backslash or start with '/'");
    }
    Ok(prefix)
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_keys_are_accepted() {
        for key in [
            "a",
            "photos/2024/cat.png",
            "ünïcödé/файл.txt",
            "a b/c..d/.hidden",
            &"x".repeat(1024),
        ] {
            assert_eq!(ObjectKey::parse(key).unwrap().as_str(), key);
        }
    }

    #[test]
    fn malformed_keys_are_rejected_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "an empty key names nothing"),
            ("/etc/passwd", "a leading slash would make it absolute"),
            ("a/../b", "'..' could climb out of the owner's prefix"),
            ("..", "'..' alone climbs out"),
            ("./a", "'.' segments alias other keys"),
            ("a//b", "empty segments alias other keys"),
            ("dir/", "a trailing slash names a directory, not an object"),
            ("a\\b", "backslashes are separators on some systems"),
            ("a\nb", "control characters break logs and headers"),
            ("a\u{7f}b", "DEL is a control character"),
        ];
        for (key, why) in cases {
            assert!(
                ObjectKey::parse(key).is_err(),
                "{key:?} must be rejected: {why}"
            );
        }
        let too_long = "x".repeat(1025);
        assert!(
            ObjectKey::parse(&too_long).is_err(),
            "over 1024 bytes exceeds S3's limit"
        );
        let multibyte = "é".repeat(513); // 1026 bytes in 513 characters
        assert!(
            ObjectKey::parse(&multibyte).is_err(),
            "the limit counts bytes, not characters"
        );
    }

    #[test]
    fn file_name_is_the_last_segment() {
        assert_eq!(ObjectKey::parse("a/b/c.png").unwrap().file_name(), "c.png");
        assert_eq!(ObjectKey::parse("c.png").unwrap().file_name(), "c.png");
    }
}
