//! Layered configuration: built-in defaults → `config/default.toml` → `config/<profile>.toml`
//! → an explicit `--config` file → compatibility variables (`DATABASE_URL`,
//! `POSTGRESQL_LIBPQ_CONN_STR`, `S3_BUCKET_NAME`) → `UPLOADER_<SECTION>__<KEY>` variables.
//!
//! Every knob has its default in [`Settings::default`]; the README's configuration table lists
//! them all. Values are validated once here so the rest of the crate can trust them.

mod env;
mod lenient;
mod lifecycle;
mod limits;
mod metrics;
mod security;
mod validate;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use env::RawEnv;
pub use lifecycle::LifecycleSettings;
pub use limits::{Limits, OwnerLimits, UploadSettings};
pub use metrics::MetricsSettings;
pub use security::{
    ApiKeyEntry, AuthMode, AuthSettings, Bucket, CorsSettings, JwtSettings, RateLimitSettings,
    parse_network,
};

/// Prefix of every environment variable that sets a configuration key.
pub const ENV_PREFIX: &str = "UPLOADER_";
/// Environment variable that selects the profile file under `config/`.
pub const PROFILE_ENV: &str = "UPLOADER_PROFILE";
/// Profile used when [`PROFILE_ENV`] is unset.
pub const DEFAULT_PROFILE: &str = "development";

/// The whole configuration of one server process.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Settings {
    /// Profile the settings were loaded for (`development`, `production`, …); not a key.
    #[serde(skip)]
    pub profile: String,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub storage: StorageSettings,
    pub uploads: UploadSettings,
    pub access: AccessSettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub cors: CorsSettings,
    pub log: LogSettings,
    pub metrics: MetricsSettings,
    pub lifecycle: LifecycleSettings,
}

/// `[server]`: where the HTTP API listens and how clients reach it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// Socket address to listen on; port 0 picks a free port.
    pub bind: String,
    /// Base URL clients use to reach this server; defaults to `http://<bind>`.
    pub public_url: Option<String>,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
    /// How long a start keeps retrying a database or storage that does not answer yet.
    pub startup_timeout_secs: u64,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed.
    #[serde(deserialize_with = "lenient::comma_list")]
    pub trusted_proxies: Vec<String>,
}

/// `[database]`: the Postgres that holds asset records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `postgres://…` URL or libpq `key=value` string. Required.
    #[serde(serialize_with = "serialize_secret")]
    pub url: Option<SecretString>,
    pub pool_size: u32,
    /// Connections shared by many requests for single statements (0: none, the pool only).
    pub shared_connections: u32,
    pub connect_timeout_secs: u64,
    pub migrate_on_start: bool,
}

/// Which object store holds the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// Files on this server's disk; the server signs and serves its own URLs.
    Local,
    /// Amazon S3 or any S3-compatible service (MinIO, R2, Ceph).
    S3,
}

/// `[storage]`: the object store and where in it assets live.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageSettings {
    pub backend: StorageBackend,
    pub bucket: String,
    pub key_prefix: String,
    /// Re-record the database to the store found at start (see "Store identity" in the README).
    pub adopt_store: bool,
    pub s3: S3Settings,
    pub local: LocalSettings,
}

/// `[storage.s3]`: an S3 or S3-compatible endpoint. Credentials come from aws-config's chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct S3Settings {
    /// Endpoint the server talks to (e.g. `http://minio:9000`); AWS when unset.
    pub endpoint: Option<String>,
    /// Endpoint put into signed URLs when clients reach storage under another name.
    pub public_endpoint: Option<String>,
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`); on by default whenever an endpoint is set.
    pub force_path_style: Option<bool>,
    pub create_bucket: bool,
}

/// `[storage.local]`: the embedded backend that stores files under a directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalSettings {
    pub root: PathBuf,
    /// HMAC key for the server's own signed URLs (at least 32 bytes).
    #[serde(serialize_with = "serialize_secret")]
    pub signing_key: Option<SecretString>,
}

/// `[access]`: limits on issued download URLs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessSettings {
    pub default_expires_in: u64,
    pub max_expires_in: u64,
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[log]`: what the process logs and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// A `tracing` filter such as `info` or `info,cloud_asset_uploader=debug`.
    pub level: String,
    pub format: LogFormat,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            public_url: None,
            shutdown_timeout_secs: 30,
            startup_timeout_secs: 60,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 16,
            shared_connections: 1,
            connect_timeout_secs: 5,
            migrate_on_start: true,
        }
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Local,
            bucket: "assets".into(),
            key_prefix: "uploads".into(),
            adopt_store: false,
            s3: S3Settings::default(),
            local: LocalSettings::default(),
        }
    }
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            endpoint: None,
            public_endpoint: None,
            region: "us-east-1".into(),
            force_path_style: None,
            create_bucket: false,
        }
    }
}

impl Default for LocalSettings {
    fn default() -> Self {
        Self {
            root: PathBuf::from("data/objects"),
            signing_key: None,
        }
    }
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            default_expires_in: 60,
            max_expires_in: 1800,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Why the configuration could not be loaded; always names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl ConfigError {
    fn invalid(key: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key,
            reason: reason.into(),
        }
    }
}

impl Settings {
    /// Loads the settings for the profile named by `UPLOADER_PROFILE` from `config_dir`, then
    /// `extra_file` and the process environment, and validates them.
    pub fn load(config_dir: &Path, extra_file: Option<&Path>) -> Result<Self, ConfigError> {
        let profile = std::env::var(PROFILE_ENV).unwrap_or_else(|_| DEFAULT_PROFILE.into());
        Self::load_from(config_dir, extra_file, &profile, RawEnv::from_process())
    }

    /// [`Settings::load`] with the profile and environment given explicitly (used by tests).
    pub fn load_from(
        config_dir: &Path,
        extra_file: Option<&Path>,
        profile: &str,
        env: RawEnv,
    ) -> Result<Self, ConfigError> {
        if profile.is_empty()
            || !profile
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ConfigError::Load(format!(
                "{PROFILE_ENV} must be a simple name such as `production`, got {profile:?}"
            )));
        }
        let mut figment = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file_exact(config_dir.join("default.toml")))
            .merge(Toml::file_exact(config_dir.join(format!("{profile}.toml"))));
        if let Some(file) = extra_file {
            if !file.is_file() {
                return Err(ConfigError::Load(format!(
                    "--config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let figment = figment
            .merge(env.compat_provider())
            .merge(env.prefixed_provider(ENV_PREFIX));
        let mut settings: Settings = figment
            .extract_lossy()
            .map_err(|e| ConfigError::Load(describe_figment_error(&e)))?;
        settings.profile = profile.to_owned();
        settings.validate()?;
        Ok(settings)
    }

    /// True in the `development` and `test` profiles, where convenience beats strictness.
    pub fn is_development(&self) -> bool {
        matches!(self.profile.as_str(), "development" | "test" | "")
    }
}

pub(crate) fn serialize_secret<S: serde::Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    // Defaults carry no secrets; anything loaded is never written back out.
    match secret {
        Some(_) => serializer.serialize_some("[redacted]"),
        None => serializer.serialize_none(),
    }
}

fn describe_figment_error(error: &figment::Error) -> String {
    // Figment's own rendering names the key path and the source (file or env) of the value.
    let mut lines = Vec::new();
    for e in error.clone() {
        lines.push(e.to_string());
    }
    lines.join("; ")
}

#[cfg(test)]
mod tests;
