//! `PUT /api/status`: mark an upload complete once storage really holds it.

use salvo::oapi::{ToSchema, endpoint};
use salvo::prelude::Json;
use salvo::{Depot, Request};
use serde::{Deserialize, Serialize};

use super::{json::read_json, owner_of};
use crate::domain::{Asset, AssetId, AssetStatus};
use crate::error::{AppError, ProblemDetails};
use crate::state::AppState;

/// The status a client reports for its upload.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = StatusRequest, example = json!({
    "asset_id": "01936f0e-4a9b-7c3e-9f51-2d7c0a8b6e42",
    "uploaded_status": "complete"
})))]
struct StatusRequest {
    /// Id returned by `POST /api/upload`.
    asset_id: String,
    /// `complete` (verified against storage) or `pending`.
    uploaded_status: String,
}

/// The asset's status after the change.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = StatusResponse))]
struct StatusResponse {
    success: bool,
    asset_id: String,
    uploaded_status: String,
}

/// Mark an upload complete (or confirm it is still pending).
///
/// Completing checks storage: the object must exist and match the declared size and
/// checksum. Completing twice is harmless; a complete asset never goes back to pending.
#[endpoint(
    tags("assets"),
    security(("bearer_token" = []), ("api_key" = [])),
    request_body = StatusRequest,
    responses(
        (status_code = 200, description = "The asset now has the requested status", body = StatusResponse),
        (status_code = 400, description = "A field is invalid (`validation_failed`) or the body is not JSON (`malformed_body`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No such asset (`asset_not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "Nothing uploaded yet (`upload_not_found`), the stored object differs from what was declared (`upload_mismatch`), or complete → pending (`completion_irreversible`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 415, description = "The body is not `application/json`", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 401, description = "Missing or refused credentials (`unauthorized`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 429, description = "Rate limit exceeded (`rate_limited`); see `Retry-After`", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database or storage unavailable", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn mark_status(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<StatusResponse>, AppError> {
    let state = AppState::from_depot(depot)?.clone();
    let owner = owner_of(depot)?;
    let body: StatusRequest = read_json(req).await?;
    let id = AssetId::parse(&body.asset_id)?;
    let requested: AssetStatus = body.uploaded_status.parse()?;

    let asset = state
        .assets
        .find(&owner, id)
        .await?
        .ok_or(AppError::AssetNotFound(id))?;
    let status = match (requested, asset.status) {
        (AssetStatus::Pending, AssetStatus::Complete) => {
            return Err(AppError::CompletionIrreversible);
        }
        (_, current) if current == requested => current,
        (AssetStatus::Complete, _) => {
            let stored_size = verify_upload(&state, &asset).await?;
            let completed = state
                .assets
                .mark_complete(&owner, id, stored_size)
                .await?
                .ok_or(AppError::AssetNotFound(id))?;
            tracing::info!(asset_id = %id, size = stored_size, "asset completed");
            state.metrics.asset_completed();
            completed.status
        }
        (AssetStatus::Pending, _) => unreachable!("pending → pending matched above"),
    };
    Ok(Json(StatusResponse {
        success: true,
        asset_id: id.to_string(),
        uploaded_status: status.to_string(),
    }))
}

/// Checks that storage holds what the client declared; returns the stored size.
async fn verify_upload(state: &AppState, asset: &Asset) -> Result<u64, AppError> {
    let wants_checksum = asset.checksum_sha256.is_some();
    let stored = state
        .storage
        .stat(&asset.storage_key, wants_checksum)
        .await?
        .ok_or(AppError::UploadNotFound)?;
    if let Some(declared) = asset.content_length
        && declared != stored.size
    {
        return Err(AppError::UploadMismatch(format!(
            "{} bytes are stored but content_length declared {declared}",
            stored.size
        )));
    }
    let max_size = state.settings.uploads.limits_for(&asset.owner).max_size;
    if stored.size > max_size {
        return Err(AppError::UploadMismatch(format!(
            "{} bytes are stored, more than the maximum upload size of {}",
            stored.size, max_size
        )));
    }
    if let Some(declared) = &asset.checksum_sha256
        && stored.checksum_sha256.as_ref() != Some(declared)
    {
        return Err(AppError::UploadMismatch(
            "the stored bytes do not match the declared checksum_sha256".into(),
        ));
    }
    Ok(stored.size)
}
