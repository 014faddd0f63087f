//! Layered configuration: built-in defaults (`Settings::default` and the built-in profiles) →
//! `config/default.toml` when it exists → `config/<profile>.toml`
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
mod parsed;
mod rate_limit;
mod security;
mod sources;
mod storage_events;
mod upload_tokens;
mod validate;
mod webhooks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

pub use env::RawEnv;
pub use lifecycle::LifecycleSettings;
pub use limits::{
    Limits, OwnerLimits, UploadSettings, content_type_matches, is_content_type_pattern,
};
pub use metrics::MetricsSettings;
pub use rate_limit::{Bucket, OnRedisError, RateLimitBackend, RateLimitSettings, RedisSettings};
pub use security::{ApiKeyEntry, AuthMode, AuthSettings, CorsSettings, JwtSettings, parse_network};
pub use sources::{BUILT_IN_PROFILES, DEFAULT_CONFIG_DIR, Sources};
pub use storage_events::StorageEventsSettings;
pub use upload_tokens::UploadTokenSettings;
pub use webhooks::{EndpointSettings, WebhookSettings};

/// Prefix of every environment variable that sets a configuration key.
pub const ENV_PREFIX: &str = "UPLOADER_";
/// Environment variable that selects the profile file under `config/`.
pub const PROFILE_ENV: &str = "UPLOADER_PROFILE";
/// Profile used when [`PROFILE_ENV`] is unset.
pub const DEFAULT_PROFILE: &str = "development";

/// The whole configuration of one server process.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Profile the settings were loaded for (`development`, `production`, …); not a key.
    #[serde(skip)]
    pub profile: String,
    /// Where the values came from, lowest layer first (for the start-up log); not a key.
    #[serde(skip)]
    pub layers: Vec<String>,
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
    pub upload_tokens: UploadTokenSettings,
    pub ui: UiSettings,
    pub webhooks: WebhookSettings,
    pub storage_events: StorageEventsSettings,
}

/// `[ui]`: the upload page served at `GET /upload`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiSettings {
    /// Serve the page (`/upload`, `/upload/page.js`, `/upload/page.css`).
    pub enabled: bool,
}

impl Default for UiSettings {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// `[server]`: where the HTTP API listens and how clients reach it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Socket address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Base URL clients use to reach this server; defaults to `http://<bind>`.
    #[serde(with = "parsed::http_url")]
    pub public_url: Option<Url>,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
    /// How long a stopping server keeps serving (while not ready) before it stops listening.
    pub shutdown_drain_secs: u64,
    /// How long an API request's JSON body may take to arrive.
    pub request_body_timeout_secs: u64,
    /// Largest request header block accepted (names, values and their separators); more is
    /// answered 431.
    pub max_header_bytes: usize,
    /// How long a start keeps retrying a database or storage that does not answer yet.
    pub startup_timeout_secs: u64,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed.
    #[serde(deserialize_with = "parsed::networks")]
    pub trusted_proxies: Vec<IpNet>,
}

/// `[database]`: the Postgres that holds asset records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
#[serde(default, deny_unknown_fields)]
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
#[serde(default, deny_unknown_fields)]
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
#[serde(default, deny_unknown_fields)]
pub struct LocalSettings {
    pub root: PathBuf,
    /// HMAC key for the server's own signed URLs (at least 32 bytes).
    #[serde(serialize_with = "serialize_secret")]
    pub signing_key: Option<SecretString>,
    /// Slowest upload accepted by the storage routes, in bytes per second over each window of
    /// `upload_rate_window_secs` (0: no floor).
    pub min_upload_rate: u64,
    pub upload_rate_window_secs: u64,
}

/// `[access]`: limits on issued download URLs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter such as `info` or `info,cloud_asset_uploader=debug`.
    pub level: String,
    pub format: LogFormat,
}

impl ServerSettings {
    /// `public_url`, or `http://<bound>` when it is not set (`bound` is the address the
    /// listener got, which differs from `bind` for port 0).
    pub fn public_url_or(&self, bound: SocketAddr) -> Url {
        self.public_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://{bound}")).expect("a socket address makes a URL")
        })
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            shutdown_timeout_secs: 30,
            shutdown_drain_secs: 0,
            request_body_timeout_secs: 10,
            max_header_bytes: 32 * 1024,
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
            min_upload_rate: 1024,
            upload_rate_window_secs: 30,
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
    /// Loads the settings: the profile named by `UPLOADER_PROFILE` (default `development`),
    /// files from `config_dir` (default `./config`, skipped when absent), `extra_file`, then
    /// the process environment; validates them.
    pub fn load(config_dir: Option<&Path>, extra_file: Option<&Path>) -> Result<Self, ConfigError> {
        let profile = std::env::var(PROFILE_ENV).ok();
        let sources = Sources {
            config_dir,
            profile: profile.as_deref(),
            extra_file,
        };
        Self::load_sources(&sources, RawEnv::from_process())
    }

    /// [`Settings::load`] with every source named explicitly (used by tests): the directory
    /// and the profile's file in it must then exist, unless the profile is built in.
    pub fn load_from(
        config_dir: &Path,
        extra_file: Option<&Path>,
        profile: &str,
        env: RawEnv,
    ) -> Result<Self, ConfigError> {
        let sources = Sources {
            config_dir: Some(config_dir),
            profile: Some(profile),
            extra_file,
        };
        Self::load_sources(&sources, env)
    }

    /// Loads the settings from `sources` and `env`, layer over layer (see [`sources`]).
    pub fn load_sources(sources: &Sources<'_>, env: RawEnv) -> Result<Self, ConfigError> {
        let (figment, layers, profile) = sources::layered(sources)?;
        let figment = figment
            .merge(env.compat_provider())
            .merge(env.prefixed_provider(ENV_PREFIX));
        let mut settings: Settings = figment
            .extract_lossy()
            .map_err(|e| ConfigError::Load(describe_figment_error(&e)))?;
        settings.profile = profile;
        settings.layers = layers;
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
    error
        .clone()
        .into_iter()
        .map(|e| match &e.kind {
            figment::error::Kind::UnknownField(field, expected) => unknown_key(&e, field, expected),
            _ => e.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `unknown key `uploads.max_szie` in config/x.toml; did you mean `max_size`?`: a typo
/// would otherwise leave the setting at its default without a word.
fn unknown_key(error: &figment::Error, field: &str, expected: &[&str]) -> String {
    // The path ends with the field itself.
    let key = if error.path.is_empty() {
        field.to_owned()
    } else {
        error.path.join(".")
    };
    let source = match &error.metadata {
        Some(meta) if meta.name.starts_with("environment variable(s) ") => format!(
            " (environment variable {ENV_PREFIX}{})",
            key.to_ascii_uppercase().replace('.', "__")
        ),
        Some(meta) => match &meta.source {
            Some(source) => format!(" in {source}"),
            None => format!(" in {}", meta.name),
        },
        None => String::new(),
    };
    let hint = expected
        .iter()
        .map(|candidate| (strsim::jaro_winkler(field, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| format!("; did you mean `{candidate}`?"))
        .unwrap_or_default();
    format!("unknown key `{key}`{source}{hint}")
}

#[cfg(test)]
mod tests;
