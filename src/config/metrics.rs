//! `[metrics]`: whether `GET /metrics` is served, and on which listener.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[metrics]`: Prometheus metrics at `GET /metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve `GET /metrics` at all.
    pub enabled: bool,
    /// A separate listen address for `/metrics` (so it need not be public); when unset,
    /// `/metrics` is served on `server.bind` next to the API.
    pub bind: Option<String>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: None,
        }
    }
}

impl MetricsSettings {
    /// True when `/metrics` is served on the API's own listener.
    pub fn on_main_listener(&self) -> bool {
        self.enabled && self.bind.is_none()
    }

    /// The separate metrics listener, when one is configured and metrics are on.
    pub fn separate_bind(&self) -> Option<&str> {
        self.bind.as_deref().filter(|_| self.enabled)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(bind) = &self.bind {
            bind.parse::<SocketAddr>().map_err(|e| {
                ConfigError::invalid("metrics.bind", format!("not a socket address: {e}"))
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_on_and_share_the_main_listener_by_default() {
        let settings = MetricsSettings::default();
        assert!(settings.enabled);
        assert_eq!(settings.separate_bind(), None);
    }

    #[test]
    fn a_bind_that_is_not_a_socket_address_names_the_key() {
        let settings = MetricsSettings {
            enabled: true,
            bind: Some("localhost".into()),
        };
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("metrics.bind"), "{error}");
    }

    #[test]
    fn a_separate_listener_is_only_used_when_metrics_are_enabled() {
        let settings = MetricsSettings {
            enabled: false,
            bind: Some("127.0.0.1:9090".into()),
        };
        assert_eq!(settings.separate_bind(), None);
    }
}
