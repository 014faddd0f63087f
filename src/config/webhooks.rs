//! `[webhooks]`: where asset events are delivered, and how hard the dispatcher tries.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{ConfigError, lenient};
use crate::events::EventType;

/// Prefix of a Standard Webhooks signing secret.
const SECRET_PREFIX: &str = "whsec_";
/// Decoded length of a signing secret, as the Standard Webhooks specification recommends.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// `[webhooks]`. Durations are written like `500ms`, `10s`, `1h` or `7d`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Receivers of events; none by default (then no event is recorded at all).
    #[serde(deserialize_with = "lenient::json_list")]
    pub endpoints: Vec<EndpointSettings>,
    /// Attempts of one delivery before it is marked failed.
    pub max_attempts: u32,
    /// How long after its event a delivery is still attempted.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// How long one attempt (connect, send, answer) may take.
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// Delay before the second attempt; each further one doubles it (with jitter).
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Longest delay between two attempts.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// How long delivered and failed deliveries (and their events) are kept.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Deliver to loopback, link-local and private addresses (tests, internal receivers).
    pub allow_private_targets: bool,
    /// Deliveries one replica claims (and attempts concurrently) at a time.
    pub batch_size: u32,
    /// How often an idle dispatcher looks for due deliveries.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}

/// One receiver of events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    /// Name in logs, metrics, the `events` command and the database; defaults to the URL's
    /// origin (`https://hooks.example.com`), which keeps paths and queries (often secret) out.
    #[serde(default)]
    pub name: Option<String>,
    /// `http://` or `https://` URL the events are POSTed to.
    pub url: String,
    /// `whsec_<base64>` key the Standard Webhooks signature is made with.
    #[serde(serialize_with = "redacted")]
    pub secret: SecretString,
    /// Event types sent there (`asset.created`, …); all of them when empty.
    #[serde(default, deserialize_with = "lenient::comma_list")]
    pub events: Vec<String>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            max_attempts: 20,
            max_age: Duration::from_secs(24 * 3600),
            attempt_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3600),
            retention: Duration::from_secs(7 * 24 * 3600),
            allow_private_targets: false,
            batch_size: 32,
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl EndpointSettings {
    /// The name deliveries to this endpoint are recorded under.
    pub fn name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => Url::parse(&self.url)
                .map(|url| url.origin().ascii_serialization())
                .unwrap_or_else(|_| self.url.clone()),
        }
    }

    /// Whether events of `event_type` go to this endpoint.
    pub fn wants(&self, event_type: EventType) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event_type.as_str())
    }

    /// The signing key, decoded (validation proved it decodes).
    pub fn secret_bytes(&self) -> Vec<u8> {
        decode_secret(self.secret.expose_secret()).unwrap_or_default()
    }
}

fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix(SECRET_PREFIX)?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
}

fn redacted<S: serde::Serializer>(_: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str("[redacted]")
}

impl WebhookSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, reason: String| Err(ConfigError::invalid(key, reason));
        let mut names = HashSet::new();
        for (index, endpoint) in self.endpoints.iter().enumerate() {
            let url = Url::parse(&endpoint.url).ok();
            if !url
                .as_ref()
                .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            {
                // The URL itself is not echoed: its path or query may be a credential.
                return invalid(
                    "webhooks.endpoints",
                    format!("endpoint {index}: url must be an http:// or https:// URL with a host"),
                );
            }
            match decode_secret(endpoint.secret.expose_secret()) {
                Some(key) if SECRET_BYTES.contains(&key.len()) => {}
                _ => {
                    return invalid(
                        "webhooks.endpoints",
                        format!(
                            "endpoint {index}: secret must be whsec_ followed by the base64 of \
                             {} to {} random bytes",
                            SECRET_BYTES.start(),
                            SECRET_BYTES.end()
                        ),
                    );
                }
            }
            if let Some(unknown) = endpoint
                .events
                .iter()
                .find(|e| e.parse::<EventType>().is_err())
            {
                return invalid(
                    "webhooks.endpoints",
                    format!(
                        "endpoint {index}: unknown event type {unknown:?}; known: {}",
                        EventType::ALL.map(EventType::as_str).join(", ")
                    ),
                );
            }
            let name = endpoint.name();
            if name.trim().is_empty() || !names.insert(name.clone()) {
                return invalid(
                    "webhooks.endpoints",
                    format!(
                        "endpoint {index}: name {name:?} is empty or used twice; give endpoints \
                         on one origin a name each"
                    ),
                );
            }
        }
        if self.max_attempts == 0 {
            return invalid("webhooks.max_attempts", "must be at least 1".into());
        }
        for (key, value) in [
            ("webhooks.attempt_timeout", self.attempt_timeout),
            ("webhooks.backoff_base", self.backoff_base),
            ("webhooks.poll_interval", self.poll_interval),
            ("webhooks.max_age", self.max_age),
        ] {
            if value < Duration::from_millis(10) {
                return invalid(key, "must be at least 10ms".into());
            }
        }
        if self.backoff_max < self.backoff_base {
            return invalid(
                "webhooks.backoff_max",
                "must be at least webhooks.backoff_base".into(),
            );
        }
        if self.batch_size == 0 || self.batch_size > 1000 {
            return invalid("webhooks.batch_size", "must be between 1 and 1000".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use figment::Figment;
    use figment::providers::Serialized;

    use super::super::{RawEnv, Settings};

    /// The settings of the default layers plus `env`, validated.
    fn from_env(env: &[(&str, &str)]) -> Result<Settings, String> {
        let mut env = env.to_vec();
        env.push(("UPLOADER_DATABASE__URL", "postgres://u:p@localhost/db"));
        let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(RawEnv::from_pairs(env).prefixed_provider("UPLOADER_"))
            .extract_lossy()
            .map_err(|e| e.to_string())?;
        settings.validate().map_err(|e| e.to_string())?;
        Ok(settings)
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn endpoints_are_read_from_one_json_variable() {
        let json = format!(
            r#"[{{"url": "https://hooks.example.com/a?token=x", "secret": "{SECRET}",
                 "events": ["asset.completed"]}},
                {{"name": "audit", "url": "http://audit.internal/", "secret": "{SECRET}"}}]"#
        );
        let settings = from_env(&[
            ("UPLOADER_WEBHOOKS__ENDPOINTS", &json),
            ("UPLOADER_WEBHOOKS__MAX_AGE", "2h"),
        ])
        .unwrap();
        let endpoints = &settings.webhooks.endpoints;
        assert_eq!(
            endpoints[0].name(),
            "https://hooks.example.com",
            "no path or query"
        );
        assert_eq!(endpoints[1].name(), "audit");
        assert!(endpoints[0].wants(crate::events::EventType::Completed));
        assert!(!endpoints[0].wants(crate::events::EventType::Created));
        assert!(
            endpoints[1].wants(crate::events::EventType::Expired),
            "all by default"
        );
        assert_eq!(settings.webhooks.max_age.as_secs(), 7200);
    }

    #[test]
    fn bad_endpoints_are_refused_naming_the_key_without_echoing_secrets() {
        let endpoint = |url: &str, secret: &str, events: &str| {
            format!(r#"[{{"url": "{url}", "secret": "{secret}", "events": [{events}]}}]"#)
        };
        for (json, reason) in [
            (
                endpoint("ftp://x.example/", SECRET, ""),
                "url must be an http",
            ),
            (endpoint("not a url", SECRET, ""), "url must be an http"),
            (
                endpoint("https://x.example/", "hunter2hunter2", ""),
                "whsec_",
            ),
            (endpoint("https://x.example/", "whsec_!!!", ""), "whsec_"),
            (
                endpoint("https://x.example/", "whsec_c2hvcnQ=", ""),
                "24 to 64",
            ),
            (
                endpoint("https://x.example/", SECRET, r#""asset.uploaded""#),
                "unknown event type",
            ),
        ] {
            let error = from_env(&[("UPLOADER_WEBHOOKS__ENDPOINTS", &json)]).unwrap_err();
            assert!(error.contains("webhooks.endpoints"), "{error}");
            assert!(error.contains(reason), "{reason}: {error}");
            assert!(
                !error.contains("hunter2") && !error.contains(SECRET),
                "{error}"
            );
        }
        let twice = format!(
            r#"[{{"url": "https://x.example/a", "secret": "{SECRET}"}},
                {{"url": "https://x.example/b", "secret": "{SECRET}"}}]"#
        );
        let error = from_env(&[("UPLOADER_WEBHOOKS__ENDPOINTS", &twice)]).unwrap_err();
        assert!(error.contains("used twice"), "{error}");
    }

    #[test]
    fn timings_are_checked() {
        for (key, value) in [
            ("UPLOADER_WEBHOOKS__MAX_ATTEMPTS", "0"),
            ("UPLOADER_WEBHOOKS__ATTEMPT_TIMEOUT", "0s"),
            ("UPLOADER_WEBHOOKS__BACKOFF_MAX", "1s"),
            ("UPLOADER_WEBHOOKS__BATCH_SIZE", "0"),
        ] {
            assert!(from_env(&[(key, value)]).is_err(), "{key}={value}");
        }
    }
}
