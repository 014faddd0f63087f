//! The end of a multipart upload as Uppy drives it: complete (verified as
//! `PUT /api/status` verifies) or abort.

use salvo::oapi::{ToSchema, endpoint};
use salvo::prelude::Json;
use salvo::{Depot, Request};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::multipart::{storage_of, upload_of};
use crate::domain::AssetStatus;
use crate::error::{AppError, ProblemDetails, UppyError};
use crate::http::Caller;
use crate::http::status::PartDto;
#[derive(Debug, Deserialize, ToSchema)]
#[salvo(schema(name = UppyCompleteMultipart))]
struct CompleteMultipart {
    parts: Vec<UppyPart>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[salvo(schema(name = UppyPart))]
#[serde(rename_all = "PascalCase")]
struct UppyPart {
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = UppyCompletedMultipart))]
struct CompletedMultipart {
    /// The asset's path in this API.
    location: String,
    key: String,
}

/// Assemble the parts and complete the asset, verified as `PUT /api/status` does (Uppy's
/// `completeMultipartUpload`); also at `/uppy/s3/multipart/...`.
#[endpoint(
    operation_id = "uppyCompleteMultipart",
    tags("uppy"),
    request_body = CompleteMultipart,
    parameters(
        ("token" = String, Path, description = "A delegated upload token"),
        ("upload_id" = String, Path, description = "The upload's id"),
        ("key" = String, Query, description = "The upload's key"),
    ),
    responses(
        (status_code = 200, description = "The asset is complete", body = CompletedMultipart),
        (status_code = 400, description = "The body is invalid, or `key` missing (`validation_failed`, `malformed_body`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "The token did not create this upload (`token_scope`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No upload of the caller has this key (`asset_not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "Parts missing or not what was declared (`upload_mismatch`), or not this multipart upload (`not_multipart`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database, storage or the rate limiter unavailable (`rate_limit_unavailable` with `rate_limit.redis.on_error = \"deny\"`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn complete_multipart(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<CompletedMultipart>, UppyError> {
    let caller = Caller::of(depot)?;
    let state = &caller.state;
    let body: CompleteMultipart = super::read_body(req, state).await?;
    let asset = match super::asset_for_key(&caller, req).await? {
        // A retried completion whose first answer was lost.
        asset if asset.status == AssetStatus::Complete => asset,
        _ => upload_of(&caller, req).await?.0,
    };
    let parts = body
        .parts
        .into_iter()
        .map(|part| PartDto {
            part_number: part.part_number,
            etag: part.etag,
        })
        .collect();
    let asset = super::complete(state, asset, parts).await?;
    Ok(Json(CompletedMultipart {
        location: format!("/api/assets/{}", asset.id),
        key: asset.storage_key,
    }))
}

/// Abort a pending upload and forget its asset (Uppy's `abortMultipartUpload`); also at
/// `/uppy/s3/multipart/...`.
#[endpoint(
    operation_id = "uppyAbortMultipart",
    tags("uppy"),
    parameters(
        ("token" = String, Path, description = "A delegated upload token"),
        ("upload_id" = String, Path, description = "The upload's id"),
        ("key" = String, Query, description = "The upload's key"),
    ),
    responses(
        (status_code = 200, description = "Aborted; the body is `{}`"),
        (status_code = 400, description = "No `key`, an empty one, or one with control characters (`validation_failed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "The token did not create this upload (`token_scope`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No upload of the caller has this key (`asset_not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "Complete already (`upload_already_complete`) or not this multipart upload (`not_multipart`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database, storage or the rate limiter unavailable (`rate_limit_unavailable` with `rate_limit.redis.on_error = \"deny\"`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn abort_multipart(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<Value>, UppyError> {
    let caller = Caller::of(depot)?;
    let state = &caller.state;
    let (asset, upload, _) = upload_of(&caller, req).await?;
    storage_of(state)?
        .abort(&asset.storage_key, &upload.upload_id)
        .await
        .map_err(AppError::from)?;
    state
        .assets
        .delete(&asset.owner, asset.id)
        .await
        .map_err(AppError::from)?;
    state.metrics.asset_deleted();
    tracing::info!(asset_id = %asset.id, "Uppy upload aborted");
    Ok(Json(serde_json::json!({})))
}
