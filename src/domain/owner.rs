//! Who an asset belongs to.

use std::fmt;

use percent_encoding::utf8_percent_encode;
use sha2::{Digest, Sha256};

use super::percent::OWNER_SEGMENT;

/// Longest owner segment of a storage key: a longer one is replaced by its digest form, so
/// that file systems (255 bytes per segment) and S3 (1024 bytes per key) can hold every key.
const MAX_SEGMENT_BYTES: usize = 128;

/// The owner of an asset: the `sub` of its token, its API key's owner, or
/// [`Owner::anonymous`] without authentication.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    pub fn anonymous() -> Self {
        Self("anonymous".into())
    }

    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owner as one storage-key segment: percent-encoded so that no owner name, whatever
    /// it contains (`/`, `..`, `%`), can reach outside its own prefix or collide with another.
    /// Past 128 bytes it is `~sha256-<hex digest>` instead: `~` never appears in an encoded
    /// name, so the two forms cannot collide either.
    pub fn storage_segment(&self) -> String {
        let encoded = utf8_percent_encode(&self.0, OWNER_SEGMENT).to_string();
        if encoded.len() <= MAX_SEGMENT_BYTES {
            return encoded;
        }
        format!("~sha256-{}", hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_segments_cannot_escape_or_collide() {
        assert_eq!(Owner::anonymous().storage_segment(), "anonymous");
        assert_eq!(Owner::new("../x").storage_segment(), "%2E%2E%2Fx");
        assert_eq!(Owner::new("a/b").storage_segment(), "a%2Fb");
        assert_ne!(
            Owner::new("a%2Fb").storage_segment(),
            Owner::new("a/b").storage_segment()
        );
    }

    #[test]
    fn long_owners_get_a_bounded_segment_that_still_cannot_collide() {
        let long = Owner::new("é".repeat(255));
        let segment = long.storage_segment();
        assert!(
            segment.starts_with("~sha256-") && segment.len() <= 128,
            "{segment}"
        );
        assert_ne!(segment, Owner::new("é".repeat(254)).storage_segment());
        assert_eq!(
            Owner::new("x".repeat(128)).storage_segment(),
            "x".repeat(128)
        );
        assert!(!Owner::new("~sha256-ab").storage_segment().starts_with('~'));
    }
}
