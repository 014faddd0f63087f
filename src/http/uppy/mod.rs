//! Uppy's S3 contract (the routes `@uppy/aws-s3` expects of Uppy Companion), served over this
//! service's assets: every file Uppy uploads becomes an owned, verified asset.
//!
//! The routes are mounted twice: under `/uppy/{token}/s3/...`, where the delegated upload
//! token travels in the path (Uppy 6's `companionEndpoint` mode sends no headers), and under
//! `/uppy/s3/...` with the usual `Authorization` or `X-Api-Key` (Uppy 5's `endpoint` mode).
//! Uppy knows an upload by its `key`, the asset's storage key.

mod finish;
mod issue;
mod multipart;
mod params;

use std::collections::BTreeMap;

use salvo::{Request, Router};
use serde::de::DeserializeOwned;

use super::guard::UppyGuard;
use super::json::read_json_of_any_type;
use super::rate_limit::RouteGroup;
use crate::domain::{Asset, AssetStatus, ValidationError};
use crate::error::AppError;
use crate::http::Caller;
use crate::state::AppState;

/// `/uppy/{token}/s3/...`, documented in the OpenAPI document.
pub fn token_routes() -> Router {
    Router::with_path("uppy/{token}").push(s3_routes())
}

/// `/uppy/s3/...`: the same routes, authenticated by headers.
pub fn header_routes() -> Router {
    Router::with_path("uppy").push(s3_routes())
}

fn s3_routes() -> Router {
    Router::with_path("s3")
        .hoop(UppyGuard(RouteGroup::Issue))
        .push(Router::with_path("params").get(params::upload_parameters))
        .push(Router::with_path("complete").post(params::complete_upload))
        .push(
            Router::with_path("multipart")
                .post(multipart::create_multipart)
                .push(
                    Router::with_path("{upload_id}")
                        .get(multipart::list_parts)
                        .delete(finish::abort_multipart)
                        .push(Router::with_path("complete").post(finish::complete_multipart))
                        .push(Router::with_path("{part_number}").get(multipart::sign_part)),
                ),
        )
}

/// The caller's asset Uppy calls `key`, if the request may use it.
async fn asset_for_key(caller: &Caller, req: &Request) -> Result<Asset, AppError> {
    let key = req
        .query::<String>("key")
        .filter(|key| !key.is_empty())
        .ok_or_else(|| ValidationError::new("key", "is required"))?;
    // No stored key holds one, and Postgres refuses a NUL in text.
    if key.chars().any(char::is_control) {
        return Err(ValidationError::new("key", "must not contain control characters").into());
    }
    let state = &caller.state;
    let asset = state
        .assets
        .find_by_storage_key(&caller.owner, &state.settings.storage.bucket, &key)
        .await?
        .ok_or(AppError::NoAssetForKey)?;
    caller.check_scope(&asset)?;
    Ok(asset)
}

/// The `metadata[name]=value` query parameters Uppy sends, by name.
fn query_metadata(req: &Request) -> BTreeMap<String, String> {
    req.queries()
        .iter()
        .filter_map(|(name, value)| {
            let name = name.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((name.to_owned(), value.clone()))
        })
        .collect()
}

/// Parses a JSON body whatever its declared media type: Uppy 6 sends JSON with `fetch` and
/// may leave the type at `text/plain`.
async fn read_body<T: DeserializeOwned>(
    req: &mut Request,
    state: &AppState,
) -> Result<T, AppError> {
    read_json_of_any_type(req, &state.settings).await
}

/// Completes `asset` as `PUT /api/status` does; a complete asset is answered as it is, so a
/// retried completion succeeds.
async fn complete(
    state: &AppState,
    asset: Asset,
    parts: Vec<super::status::PartDto>,
) -> Result<Asset, AppError> {
    if asset.status == AssetStatus::Complete {
        return Ok(asset);
    }
    super::status::complete_asset(state, &asset, parts).await
}
