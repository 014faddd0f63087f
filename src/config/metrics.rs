//! `[metrics]`: whether `GET /metrics` is served, and on which listener.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `[metrics]`: Prometheus metrics at `GET /metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve `GET /metrics` at all.
    pub enabled: bool,
    /// A separate listen address for `/metrics` (so it need not be public); when unset,
    /// `/metrics` is served on `server.bind` next to the API.
    pub bind: Option<SocketAddr>,
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
    pub fn separate_bind(&self) -> Option<SocketAddr> {
        self.bind.filter(|_| self.enabled)
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
    fn a_separate_listener_is_only_used_when_metrics_are_enabled() {
        let settings = MetricsSettings {
            enabled: false,
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
        };
        assert_eq!(settings.separate_bind(), None);
    }
}
