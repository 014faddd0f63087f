//! The one cloneable state every handler reads from the depot.

use std::sync::Arc;

use salvo::Depot;

use crate::config::Settings;
use crate::db::{AssetRepository, PgPool};
use crate::error::AppError;
use crate::storage::Storage;
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
}

impl AppState {
    /// The state injected into the router by `http::service`.
    pub fn from_depot(depot: &Depot) -> Result<&Self, AppError> {
        depot.get_typed::<Self>().map_err(|_| {
            AppError::Internal(anyhow::anyhow!("application state missing from the depot"))
        })
    }
}
