//! `[rate_limit]`: token buckets per owner (per client IP when unauthenticated), kept in each
//! process's memory or, shared by every replica, in Redis.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{ConfigError, serialize_secret};

/// `[rate_limit]`: token buckets per owner (per client IP when unauthenticated).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Where the buckets live.
    pub backend: RateLimitBackend,
    /// `POST /api/upload` and `PUT /api/status`: requests that issue URLs or change state.
    pub issue: Bucket,
    /// `GET /api/access` and other reads.
    pub read: Bucket,
    /// `[rate_limit.redis]`, used with `backend = "redis"`.
    pub redis: RedisSettings,
}

/// Where the rate-limit buckets live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitBackend {
    /// In this process: each replica allows the configured rate on its own.
    Memory,
    /// In Redis, shared by every replica: the configured rate holds for the whole cluster.
    Redis,
}

/// A token bucket: refilled at `per_second`, holding at most `burst` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bucket {
    pub per_second: u32,
    pub burst: u32,
}

/// `[rate_limit.redis]`: the Redis that holds the buckets of every replica.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS.
    #[serde(serialize_with = "serialize_secret")]
    pub url: Option<SecretString>,
    /// Prepended to every key, so several deployments can share one Redis.
    pub key_prefix: String,
    /// PEM bundle of the roots a `rediss://` server's certificate must chain to; the
    /// machine's roots when unset.
    pub root_cert: Option<PathBuf>,
    pub connect_timeout_ms: u64,
    /// How long one request waits for Redis before `on_error` decides.
    pub command_timeout_ms: u64,
    /// What a request gets when Redis cannot answer.
    pub on_error: OnRedisError,
}

/// What a rate-limited request gets while Redis cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRedisError {
    /// Admitted, unlimited: a limiter outage does not become an API outage.
    Allow,
    /// Refused with 503 `rate_limit_unavailable`.
    Deny,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            backend: RateLimitBackend::Memory,
            issue: Bucket {
                per_second: 20,
                burst: 40,
            },
            read: Bucket {
                per_second: 100,
                burst: 200,
            },
            redis: RedisSettings::default(),
        }
    }
}

impl Default for Bucket {
    fn default() -> Self {
        Self {
            per_second: 20,
            burst: 40,
        }
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "uploader:rate_limit:".into(),
            root_cert: None,
            connect_timeout_ms: 1000,
            command_timeout_ms: 200,
            on_error: OnRedisError::Allow,
        }
    }
}

impl RedisSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }
}

impl RateLimitSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, bucket) in [
            ("rate_limit.issue", self.issue),
            ("rate_limit.read", self.read),
        ] {
            if bucket.per_second == 0 || bucket.burst == 0 {
                return Err(ConfigError::invalid(
                    key,
                    "per_second and burst must be at least 1",
                ));
            }
        }
        if !self.enabled || self.backend != RateLimitBackend::Redis {
            return Ok(());
        }
        let redis = &self.redis;
        let Some(url) = &redis.url else {
            return Err(ConfigError::invalid(
                "rate_limit.redis.url",
                "must be set with rate_limit.backend = \"redis\"",
            ));
        };
        // The parse error may quote the URL, password included: name the key only.
        let scheme_ok = url::Url::parse(url.expose_secret())
            .is_ok_and(|url| matches!(url.scheme(), "redis" | "rediss") && url.has_host());
        if !scheme_ok {
            return Err(ConfigError::invalid(
                "rate_limit.redis.url",
                "must be a redis:// or rediss:// URL with a host",
            ));
        }
        for (key, millis) in [
            (
                "rate_limit.redis.connect_timeout_ms",
                redis.connect_timeout_ms,
            ),
            (
                "rate_limit.redis.command_timeout_ms",
                redis.command_timeout_ms,
            ),
        ] {
            if millis == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis_with(url: Option<&str>) -> RateLimitSettings {
        RateLimitSettings {
            backend: RateLimitBackend::Redis,
            redis: RedisSettings {
                url: url.map(|url| SecretString::from(url.to_owned())),
                ..RedisSettings::default()
            },
            ..RateLimitSettings::default()
        }
    }

    #[test]
    fn the_memory_backend_needs_no_redis() {
        assert!(RateLimitSettings::default().validate().is_ok());
    }

    #[test]
    fn the_redis_backend_takes_redis_and_rediss_urls() {
        for url in [
            "redis://127.0.0.1:6379",
            "rediss://user:pw@cache.internal:6380/2",
        ] {
            assert!(redis_with(Some(url)).validate().is_ok(), "{url}");
        }
    }

    #[test]
    fn the_redis_backend_refuses_a_missing_or_foreign_url_without_quoting_it() {
        for (url, reason) in [
            (None, "no url"),
            (Some("http://secret@cache:6379"), "another scheme"),
            (Some("redis:secret"), "no host"),
            (Some("not a url secret"), "not a URL"),
        ] {
            let error = redis_with(url).validate().unwrap_err().to_string();
            assert!(error.contains("rate_limit.redis.url"), "{reason}: {error}");
            assert!(!error.contains("secret"), "{reason}: {error}");
        }
    }

    #[test]
    fn a_zero_timeout_names_its_key() {
        let mut settings = redis_with(Some("redis://127.0.0.1"));
        settings.redis.command_timeout_ms = 0;
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("command_timeout_ms"), "{error}");
    }
}
