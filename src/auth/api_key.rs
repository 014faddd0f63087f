//! API keys: `X-Api-Key: <key>`. Keys are configured only as SHA-256 digests, so the
//! configuration never holds a usable key, and compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::ApiKeyEntry;
use crate::domain::Owner;

/// The header that carries the key.
pub const HEADER: &str = "x-api-key";

/// The configured keys.
pub struct ApiKeys {
    entries: Vec<([u8; 32], Owner)>,
}

impl ApiKeys {
    pub fn new(entries: &[ApiKeyEntry]) -> Self {
        let entries = entries
            .iter()
            .filter_map(|entry| {
                let digest: [u8; 32] = hex::decode(entry.sha256.trim()).ok()?.try_into().ok()?;
                Some((digest, Owner::new(entry.owner.clone())))
            })
            .collect();
        Self { entries }
    }

    /// The owner of `key`, when it is one of the configured keys.
    pub fn owner_of(&self, key: &str) -> Option<Owner> {
        if key.is_empty() {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Every entry is compared, so timing does not tell which (or whether one) matched.
        let mut found = None;
        for (expected, owner) in &self.entries {
            if bool::from(expected.ct_eq(&digest)) {
                found = Some(owner.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        ApiKeys::new(&[
            ApiKeyEntry {
                owner: "alice".into(),
                sha256: hex::encode(Sha256::digest(b"alice-key")),
            },
            ApiKeyEntry {
                owner: "bob".into(),
                sha256: hex::encode(Sha256::digest(b"bob-key")).to_uppercase(),
            },
        ])
    }

    #[test]
    fn a_configured_key_maps_to_its_owner() {
        assert_eq!(keys().owner_of("alice-key"), Some(Owner::new("alice")));
        assert_eq!(
            keys().owner_of("bob-key"),
            Some(Owner::new("bob")),
            "digests are case-insensitive hex"
        );
    }

    #[test]
    fn unknown_empty_and_digest_shaped_keys_are_refused() {
        let keys = keys();
        assert_eq!(keys.owner_of("mallory-key"), None);
        assert_eq!(keys.owner_of(""), None);
        let digest = hex::encode(Sha256::digest(b"alice-key"));
        assert_eq!(
            keys.owner_of(&digest),
            None,
            "the digest itself is not a key"
        );
    }
}
