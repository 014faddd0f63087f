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

    /// The 32 raw bytes of the digest.
    pub fn digest(&self) -> [u8; 32] {
        let mut digest = [0; 32];
        // `parse` and `from_digest` only ever hold the base64 of 32 bytes.
        if let Ok(bytes) = STANDARD.decode(&self.0) {
            digest.copy_from_slice(&bytes);
        }
        digest
    }
}

/// The checksum S3 keeps for an object uploaded in parts, each with its SHA-256 (checksum
/// type `COMPOSITE`): the SHA-256 of the parts' 32-byte digests concatenated in part order,
/// base64, then `-` and the number of parts. Anyone holding the file and the part size can
/// compute it again.
pub fn composite_sha256(parts: &[Sha256Checksum]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.digest());
    }
    format!("{}-{}", STANDARD.encode(hasher.finalize()), parts.len())
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
        let checksum = Sha256Checksum::parse(&encoded).unwrap();
        assert_eq!(checksum.as_str(), encoded);
        assert_eq!(
            checksum.digest().as_slice(),
            Sha256::digest(b"hello").as_slice()
        );
    }

    #[test]
    fn the_composite_checksum_hashes_the_part_digests_in_order() {
        let parts: Vec<Sha256Checksum> = [b"first".as_slice(), b"second"]
            .iter()
            .map(|bytes| Sha256Checksum::from_digest(&Sha256::digest(bytes)).unwrap())
            .collect();
        let mut digests = Sha256::digest(b"first").to_vec();
        digests.extend_from_slice(&Sha256::digest(b"second"));
        let expected = format!("{}-2", STANDARD.encode(Sha256::digest(&digests)));
        assert_eq!(composite_sha256(&parts), expected);
        let swapped = [parts[1].clone(), parts[0].clone()];
        assert_ne!(composite_sha256(&swapped), expected, "order matters");
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
