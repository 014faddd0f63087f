//! `[upload_tokens]`: short-lived tokens an application mints for a browser, so that the
//! browser never holds the application's own credentials (see `auth::upload_token`).

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Longest lifetime a token may be given: a week.
const MAX_LIFETIME_SECS: u64 = 7 * 24 * 3600;

/// `[upload_tokens]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadTokenSettings {
    /// HMAC key (at least 32 characters) the tokens are signed with; the same on every
    /// replica. Unset: a random key per process in development, tokens disabled elsewhere.
    #[serde(serialize_with = "super::serialize_secret")]
    pub signing_key: Option<SecretString>,
    /// Lifetime of a token when none is asked for (s).
    pub default_expires_in: u64,
    /// Longest lifetime a token may be given (s).
    pub max_expires_in: u64,
}

impl Default for UploadTokenSettings {
    fn default() -> Self {
        Self {
            signing_key: None,
            default_expires_in: 600,
            max_expires_in: 3600,
        }
    }
}

impl UploadTokenSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(key) = &self.signing_key
            && key.expose_secret().len() < 32
        {
            return Err(ConfigError::invalid(
                "upload_tokens.signing_key",
                "must be at least 32 characters",
            ));
        }
        if self.max_expires_in == 0 || self.max_expires_in > MAX_LIFETIME_SECS {
            return Err(ConfigError::invalid(
                "upload_tokens.max_expires_in",
                format!("must be between 1 and {MAX_LIFETIME_SECS} seconds"),
            ));
        }
        if self.default_expires_in == 0 || self.default_expires_in > self.max_expires_in {
            return Err(ConfigError::invalid(
                "upload_tokens.default_expires_in",
                "must be between 1 and upload_tokens.max_expires_in",
            ));
        }
        Ok(())
    }
}
