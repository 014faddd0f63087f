//! Who is calling an `/api` route, as the guard established it: the state, the owner, and the
//! scope of the delegated upload token when the request came with one. Every handler starts
//! from a [`Caller`], and reaches an asset only through [`Caller::find_owned`].

use salvo::Depot;

use crate::domain::{Asset, AssetId, Owner, UploadScope};
use crate::error::AppError;
use crate::state::AppState;

/// The request's caller: what it may reach and the state to reach it with.
pub struct Caller {
    pub state: AppState,
    pub owner: Owner,
    /// Set when the request came with a delegated upload token.
    pub scope: Option<UploadScope>,
}

impl Caller {
    /// The caller the guard put in the depot (an internal error on a route without a guard).
    pub fn of(depot: &Depot) -> Result<Self, AppError> {
        let state = AppState::from_depot(depot)?.clone();
        let owner = depot
            .get_typed::<Owner>()
            .cloned()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("no owner was set for the request")))?;
        let scope = depot.get_typed::<UploadScope>().ok().cloned();
        Ok(Self {
            state,
            owner,
            scope,
        })
    }

    /// The owner's asset `id`, if this request may use it: a delegated upload token may use
    /// only the assets it created (403 `token_scope` for the owner's others).
    pub async fn find_owned(&self, id: AssetId) -> Result<Asset, AppError> {
        let asset = self
            .state
            .assets
            .find(&self.owner, id)
            .await?
            .ok_or(AppError::AssetNotFound(id))?;
        self.check_scope(&asset)?;
        Ok(asset)
    }

    /// Refuses an asset the request's delegated upload token did not create.
    pub fn check_scope(&self, asset: &Asset) -> Result<(), AppError> {
        match &self.scope {
            Some(scope) => Ok(scope.check_asset(asset)?),
            None => Ok(()),
        }
    }
}
