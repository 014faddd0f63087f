//! A declared SHA-256 digest of an upload.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::ValidationError;

/// A SHA-256 digest in the form S3 uses for `x-amz-checksum-sha256`: standard base64 of the
/// 32 raw digest bytes (44 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sha256Checksum(String);

impl Sha256Checksum {
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let bytes = STANDARD.decode(value).map_err(|_| {
            ValidationError::new(
                "checksum_sha256",
                "must be the base64 encoding of a SHA-256 digest",
            )
        })?;
        Self::from_digest(&bytes)
            .ok_or_else(|| ValidationError::new("checksum_sha256", "must encode exactly 32 bytes"))
    }

    /// From the 32 raw bytes of a digest.
    pub fn from_digest(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == 32).then(|| Self(STANDARD.encode(bytes)))
    }

    /// The canonical base64 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sha256Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn a_base64_digest_round_trips() {
        let encoded = STANDARD.encode(Sha256::digest(b"hello"));
        assert_eq!(Sha256Checksum::parse(&encoded).unwrap().as_str(), encoded);
    }

    #[test]
    fn other_encodings_and_lengths_are_rejected() {
        let cases: &[(String, &str)] = &[
            (
                hex::encode(Sha256::digest(b"hello")),
                "hex is not the S3 form",
            ),
            (
                STANDARD.encode([0u8; 31]),
                "31 bytes is not a SHA-256 digest",
            ),
            (
                STANDARD.encode([0u8; 33]),
                "33 bytes is not a SHA-256 digest",
            ),
            ("not base64!".into(), "not base64 at all"),
            (String::new(), "empty"),
        ];
        for (value, why) in cases {
            assert!(Sha256Checksum::parse(value).is_err(), "{value:?}: {why}");
        }
    }
}
