//! `[auth]` and `[cors]`: who may call the API, and from which browser origins.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::lenient;

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Every request acts for the owner `anonymous` (development only).
    None,
    /// `Authorization: Bearer <JWT>`; the owner is the `sub` claim.
    Jwt,
    /// `X-Api-Key: <key>`; each configured key maps to one owner.
    ApiKey,
}

/// `[auth]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub mode: AuthMode,
    pub jwt: JwtSettings,
    /// API keys, configured only as SHA-256 hex digests of the key.
    #[serde(deserialize_with = "lenient::json_list")]
    pub api_keys: Vec<ApiKeyEntry>,
}

/// `[auth.jwt]`: exactly one key source (`hs256_secret`, `public_key_pem` or `jwks_path`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtSettings {
    /// Shared secret for HS256 tokens (at least 32 characters).
    #[serde(serialize_with = "super::serialize_secret")]
    pub hs256_secret: Option<SecretString>,
    /// PEM public key (RSA for RS256, P-256 EC for ES256).
    pub public_key_pem: Option<String>,
    /// A JWKS file (`{"keys": [...]}`), reloaded when it changes.
    pub jwks_path: Option<PathBuf>,
    /// How often the JWKS file is checked for changes, in seconds.
    pub jwks_reload_secs: u64,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
    /// Clock skew tolerated for `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

/// One API key: the owner it acts for and the SHA-256 (hex) of the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyEntry {
    pub owner: String,
    pub sha256: String,
}

/// `[cors]`: which browser origins may call the API (none by default).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    #[serde(deserialize_with = "lenient::comma_list")]
    pub allowed_origins: Vec<String>,
    #[serde(deserialize_with = "lenient::comma_list")]
    pub allowed_methods: Vec<String>,
    #[serde(deserialize_with = "lenient::comma_list")]
    pub allowed_headers: Vec<String>,
    pub max_age_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            mode: AuthMode::None,
            jwt: JwtSettings::default(),
            api_keys: Vec::new(),
        }
    }
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            public_key_pem: None,
            jwks_path: None,
            jwks_reload_secs: 60,
            issuer: None,
            audience: None,
            leeway_secs: 30,
        }
    }
}

impl Default for CorsSettings {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            allowed_methods: ["GET", "POST", "PUT", "DELETE"].map(String::from).to_vec(),
            allowed_headers: ["authorization", "content-type", "x-api-key", "x-request-id"]
                .map(String::from)
                .to_vec(),
            max_age_secs: 600,
        }
    }
}

impl super::Settings {
    /// Checks `[auth]`, `[rate_limit]` (in its own module), `[cors]` and the upload policy.
    pub(super) fn validate_security(&self) -> Result<(), super::ConfigError> {
        use super::ConfigError;
        let invalid = |key: &'static str, reason: &str| Err(ConfigError::invalid(key, reason));
        let auth = &self.auth;
        match auth.mode {
            AuthMode::None if self.profile == "production" => {
                return invalid(
                    "auth.mode",
                    "\"none\" is refused in the production profile; use \"jwt\" or \"api_key\"",
                );
            }
            AuthMode::None => {}
            AuthMode::Jwt => {
                let jwt = &auth.jwt;
                let sources = [
                    jwt.hs256_secret.is_some(),
                    jwt.public_key_pem.is_some(),
                    jwt.jwks_path.is_some(),
                ];
                if sources.iter().filter(|set| **set).count() != 1 {
                    return invalid(
                        "auth.jwt",
                        "set exactly one of hs256_secret, public_key_pem and jwks_path",
                    );
                }
                if let Some(secret) = &jwt.hs256_secret
                    && secrecy::ExposeSecret::expose_secret(secret).len() < 32
                {
                    return invalid("auth.jwt.hs256_secret", "must be at least 32 characters");
                }
                if jwt.jwks_reload_secs == 0 {
                    return invalid("auth.jwt.jwks_reload_secs", "must be at least 1");
                }
            }
            AuthMode::ApiKey => {
                if auth.api_keys.is_empty() {
                    return invalid(
                        "auth.api_keys",
                        "must list at least one { owner, sha256 } with auth.mode = \"api_key\"",
                    );
                }
                let mut seen = std::collections::HashSet::new();
                for key in &auth.api_keys {
                    if key.owner.trim().is_empty() {
                        return invalid("auth.api_keys", "every entry needs a non-empty owner");
                    }
                    let digest = key.sha256.to_ascii_lowercase();
                    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return invalid(
                            "auth.api_keys",
                            "sha256 must be the 64 hex digits of the key's SHA-256",
                        );
                    }
                    if !seen.insert(digest) {
                        return invalid("auth.api_keys", "the same key digest is listed twice");
                    }
                }
            }
        }
        self.rate_limit.validate()?;
        for origin in &self.cors.allowed_origins {
            let valid = origin == "*"
                || url::Url::parse(origin).is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.path() == "/"
                        && !origin.ends_with('/')
                });
            if !valid {
                return invalid(
                    "cors.allowed_origins",
                    "entries must be origins such as https://app.example.com, or *",
                );
            }
        }
        self.validate_upload_policy()
    }

    fn validate_upload_policy(&self) -> Result<(), super::ConfigError> {
        use super::ConfigError;
        let uploads = &self.uploads;
        if uploads.allowed_content_types.is_empty() {
            return Err(ConfigError::invalid(
                "uploads.allowed_content_types",
                "must not be empty (use [\"*/*\"] for any)",
            ));
        }
        for pattern in &uploads.allowed_content_types {
            if !super::limits::is_content_type_pattern(pattern) {
                return Err(ConfigError::invalid(
                    "uploads.allowed_content_types",
                    format!("{pattern:?} is neither a media type nor a wildcard such as image/*"),
                ));
            }
        }
        if uploads.multipart_threshold < super::limits::MIN_PART_SIZE {
            return Err(ConfigError::invalid(
                "uploads.multipart_threshold",
                "must be at least 5 MiB (5242880)",
            ));
        }
        if !(super::limits::MIN_PART_SIZE..=super::limits::MAX_PART_SIZE)
            .contains(&uploads.multipart_part_size)
        {
            return Err(ConfigError::invalid(
                "uploads.multipart_part_size",
                "must be between 5 MiB and 5 GiB",
            ));
        }
        if uploads.max_presigned_parts == 0
            || u64::from(uploads.max_presigned_parts) > super::limits::MAX_PARTS
        {
            return Err(ConfigError::invalid(
                "uploads.max_presigned_parts",
                "must be between 1 and 10000",
            ));
        }
        for limits in &uploads.owner_limits {
            if limits.owner.trim().is_empty() {
                return Err(ConfigError::invalid(
                    "uploads.owner_limits",
                    "every entry needs a non-empty owner",
                ));
            }
            if limits
                .max_size
                .is_some_and(|size| size == 0 || size > i64::MAX as u64)
            {
                return Err(ConfigError::invalid(
                    "uploads.owner_limits",
                    "max_size must be between 1 and 2^63-1",
                ));
            }
        }
        Ok(())
    }
}

/// An address or CIDR range.
pub fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}
