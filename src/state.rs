//! The one cloneable state every handler reads from the depot.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use ipnet::IpNet;
use salvo::Depot;

use crate::auth::Authenticator;
use crate::auth::upload_token::UploadTokens;
use crate::config::Settings;
use crate::db::{AssetRepository, PgPool};
use crate::error::AppError;
use crate::http::rate_limit::RateLimits;
use crate::metrics::Metrics;
use crate::storage::Storage;
use crate::storage::identity::StoreGuard;
use crate::storage::local::LocalStorage;

/// Everything a request may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: PgPool,
    pub assets: AssetRepository,
    pub storage: Arc<dyn Storage>,
    /// Set when the local backend is in use: its `/storage/…` routes need the concrete type.
    pub local_storage: Option<Arc<LocalStorage>>,
    /// Whether `storage` is the store the database records; API requests read its flag.
    pub store: Arc<StoreGuard>,
    /// Verifies the credentials of `/api` requests.
    pub auth: Arc<Authenticator>,
    /// Mints and verifies delegated upload tokens; `None` when they are disabled.
    pub upload_tokens: Option<Arc<UploadTokens>>,
    /// Rate limits per route group, when enabled.
    pub rate_limits: Option<Arc<RateLimits>>,
    /// Proxies whose `X-Forwarded-For` is believed (`server.trusted_proxies`).
    pub trusted_proxies: Arc<Vec<IpNet>>,
    pub metrics: Arc<Metrics>,
    /// True once a shutdown began: not ready, and every response closes its connection.
    pub draining: Arc<AtomicBool>,
}

impl AppState {
    /// The state injected into the router by `http::service`.
    pub fn from_depot(depot: &Depot) -> Result<&Self, AppError> {
        depot.get_typed::<Self>().map_err(|_| {
            AppError::Internal(anyhow::anyhow!("application state missing from the depot"))
        })
    }
}
