//! Checks of every setting that serde's types cannot express; each failure names its key.

use secrecy::ExposeSecret;
use url::Url;

use super::{ConfigError, Settings};

/// More shared connections than this would defeat their purpose (see `db::SharedConnections`).
const MAX_SHARED_CONNECTIONS: u32 = 256;
/// Bounds of `server.max_header_bytes`: browsers send a few KiB of headers (cookies
/// included); hyper itself reads at most about 400 KB of head.
const MIN_HEADER_BYTES: usize = 4 * 1024;
const MAX_HEADER_BYTES: usize = 256 * 1024;

impl Settings {
    /// Checks every value that serde's types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.database.url {
            None => {
                return Err(ConfigError::invalid(
                    "database.url",
                    "missing (set UPLOADER_DATABASE__URL or DATABASE_URL)",
                ));
            }
            Some(url) => url
                .expose_secret()
                .parse::<tokio_postgres::Config>()
                // The parser's message can quote the string, which may hold a password.
                .map(|_| ())
                .map_err(|_| {
                    ConfigError::invalid(
                        "database.url",
                        "not a valid Postgres URL or key=value string",
                    )
                })?,
        }
        if self.database.pool_size == 0 {
            return Err(ConfigError::invalid(
                "database.pool_size",
                "must be at least 1",
            ));
        }
        if self.database.shared_connections > MAX_SHARED_CONNECTIONS {
            return Err(ConfigError::invalid(
                "database.shared_connections",
                format!("must be at most {MAX_SHARED_CONNECTIONS}"),
            ));
        }
        if self.server.request_body_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "server.request_body_timeout_secs",
                "must be at least 1",
            ));
        }
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&self.server.max_header_bytes) {
            return Err(ConfigError::invalid(
                "server.max_header_bytes",
                format!("must be between {MIN_HEADER_BYTES} and {MAX_HEADER_BYTES}"),
            ));
        }
        if self.storage.local.upload_rate_window_secs == 0 {
            return Err(ConfigError::invalid(
                "storage.local.upload_rate_window_secs",
                "must be at least 1",
            ));
        }
        if self.database.connect_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "database.connect_timeout_secs",
                "must be at least 1",
            ));
        }
        check_bucket_name(&self.storage.bucket)?;
        check_key_prefix(&self.storage.key_prefix)?;
        if let Some(endpoint) = &self.storage.s3.endpoint {
            check_http_url("storage.s3.endpoint", endpoint)?;
        }
        if let Some(endpoint) = &self.storage.s3.public_endpoint {
            check_http_url("storage.s3.public_endpoint", endpoint)?;
        }
        if self.storage.s3.region.trim().is_empty() {
            return Err(ConfigError::invalid(
                "storage.s3.region",
                "must not be empty",
            ));
        }
        if let Some(key) = &self.storage.local.signing_key
            && key.expose_secret().len() < 32
        {
            return Err(ConfigError::invalid(
                "storage.local.signing_key",
                "must be at least 32 characters",
            ));
        }
        check_expiry(
            "uploads",
            self.uploads.default_expires_in,
            self.uploads.max_expires_in,
        )?;
        check_expiry(
            "access",
            self.access.default_expires_in,
            self.access.max_expires_in,
        )?;
        self.validate_security()?;
        self.lifecycle.validate()?;
        self.upload_tokens.validate()?;
        if self.uploads.max_size == 0 {
            return Err(ConfigError::invalid(
                "uploads.max_size",
                "must be at least 1",
            ));
        }
        if self.uploads.max_size > i64::MAX as u64 {
            return Err(ConfigError::invalid("uploads.max_size", "too large"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::invalid(
                "log.level",
                "not a valid tracing filter",
            ));
        }
        self.webhooks.validate()?;
        self.storage_events.validate()?;
        if self.uploads.complete_on_upload && self.storage.backend != super::StorageBackend::Local {
            return Err(ConfigError::invalid(
                "uploads.complete_on_upload",
                "needs storage.backend = \"local\" (the bytes do not pass through this server \
                 otherwise; with S3, let storage report uploads to POST /api/storage-events)",
            ));
        }
        Ok(())
    }
}

fn check_http_url(key: &'static str, value: &str) -> Result<(), ConfigError> {
    let url =
        Url::parse(value).map_err(|e| ConfigError::invalid(key, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::invalid(
            key,
            "must be an http:// or https:// URL with a host",
        ));
    }
    Ok(())
}

fn check_expiry(section: &'static str, default: u64, max: u64) -> Result<(), ConfigError> {
    let (default_key, max_key) = match section {
        "uploads" => ("uploads.default_expires_in", "uploads.max_expires_in"),
        _ => ("access.default_expires_in", "access.max_expires_in"),
    };
    // SigV4 presigned URLs cannot live longer than seven days.
    if max == 0 || max > 604_800 {
        return Err(ConfigError::invalid(
            max_key,
            "must be between 1 and 604800 seconds",
        ));
    }
    if default == 0 || default > max {
        return Err(ConfigError::invalid(
            default_key,
            format!("must be between 1 and {max_key} ({max})"),
        ));
    }
    Ok(())
}

fn check_bucket_name(bucket: &str) -> Result<(), ConfigError> {
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "storage.bucket",
            "must be 3-63 characters of lowercase letters, digits, '-' and '.'",
        ))
    }
}

fn check_key_prefix(prefix: &str) -> Result<(), ConfigError> {
    let valid = !prefix.is_empty()
        && prefix.len() <= 128
        && prefix.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if valid {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "storage.key_prefix",
            "must be '/'-separated segments of letters, digits, '-', '_' and '.'",
        ))
    }
}
