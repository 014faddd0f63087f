//! `[storage_events]`: `POST /api/storage-events`, where the object store reports new objects
//! so that their uploads complete without the client's `PUT /api/status`.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Shortest token accepted: a guessable one would let anyone trigger completions.
const MIN_TOKEN_LEN: usize = 32;

/// `[storage_events]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageEventsSettings {
    /// The bearer token the object store's notifications carry (at least 32 characters).
    /// Unset: the route does not exist.
    #[serde(serialize_with = "super::serialize_secret")]
    pub token: Option<SecretString>,
}

impl StorageEventsSettings {
    /// Whether `POST /api/storage-events` is served.
    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.token {
            let token = token.expose_secret();
            if token.len() < MIN_TOKEN_LEN {
                return Err(ConfigError::invalid(
                    "storage_events.token",
                    format!("must be at least {MIN_TOKEN_LEN} characters"),
                ));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::invalid(
                    "storage_events.token",
                    "must be printable ASCII without spaces (it travels in an HTTP header)",
                ));
            }
        }
        Ok(())
    }
}
