//! `[lifecycle]`: how abandoned uploads are cleaned up.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[lifecycle]`. Durations are written like `90s`, `5m` or `1h`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleSettings {
    /// Run the sweeper inside the server.
    pub sweeper_enabled: bool,
    /// How often the sweeper runs.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// How long after its upload URL expired a pending asset is removed.
    #[serde(with = "humantime_serde")]
    pub pending_grace: Duration,
    /// Most assets removed per database round of a sweep.
    pub sweep_batch_size: u32,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            sweeper_enabled: true,
            sweep_interval: Duration::from_secs(300),
            pending_grace: Duration::from_secs(3600),
            sweep_batch_size: 100,
        }
    }
}

impl LifecycleSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.sweep_interval < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "lifecycle.sweep_interval",
                "must be at least 1s",
            ));
        }
        if self.sweep_batch_size == 0 || self.sweep_batch_size > 10_000 {
            return Err(ConfigError::invalid(
                "lifecycle.sweep_batch_size",
                "must be between 1 and 10000",
            ));
        }
        Ok(())
    }
}
