//! Multipart uploads as Uppy drives them: create, sign each part, list (see `finish` for
//! complete and abort).
//! Parts are as large as Uppy's default chunks, so the part URLs Uppy asks for are signed for
//! the exact bytes it sends.

use salvo::oapi::{ToSchema, endpoint};
use salvo::prelude::Json;
use salvo::{Depot, Request};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::issue::{Announced, issue};
use crate::domain::{Asset, AssetStatus, MultipartUpload, ValidationError};
use crate::error::{AppError, ProblemDetails, UppyError};
use crate::http::Caller;
use crate::state::AppState;
use crate::storage::{MultipartStorage, PartSpec};

const MIB: u64 = 1024 * 1024;

/// The file a multipart upload is for.
#[derive(Debug, Deserialize, ToSchema)]
#[salvo(schema(name = UppyCreateMultipart))]
struct CreateMultipart {
    filename: String,
    #[serde(default, rename = "type")]
    content_type: String,
    /// `object_key` names the asset; `size` (the file's size in bytes) is required.
    #[serde(default)]
    metadata: std::collections::BTreeMap<String, Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = UppyMultipartUpload))]
#[serde(rename_all = "camelCase")]
struct MultipartCreated {
    upload_id: String,
    key: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = UppyPartUrl))]
struct PartUrl {
    url: String,
    /// Lifetime of the URL in seconds.
    expires: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = UppyStoredPart))]
#[serde(rename_all = "PascalCase")]
struct StoredPart {
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: Option<String>,
    size: u64,
}

/// Uppy's default chunk size for a file of `total` bytes: 5 MiB, or more for files with over
/// 10 000 chunks.
fn uppy_part_size(total: u64) -> u64 {
    (5 * MIB).max(total.div_ceil(10_000))
}

pub(super) fn storage_of(state: &AppState) -> Result<&dyn MultipartStorage, AppError> {
    state
        .storage
        .multipart()
        .ok_or(AppError::MultipartNotSupported)
}

/// Start a multipart upload (Uppy's `createMultipartUpload`); also at `/uppy/s3/multipart`.
#[endpoint(
    operation_id = "uppyCreateMultipart",
    tags("uppy"),
    request_body = CreateMultipart,
    parameters(("token" = String, Path, description = "A delegated upload token")),
    responses(
        (status_code = 200, description = "The upload and its key", body = MultipartCreated),
        (status_code = 400, description = "A field is invalid, e.g. no `metadata.size` (`validation_failed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "Outside the token's scope (`token_scope`) or over a quota (`quota_exceeded`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "An asset with this name is complete (`upload_already_complete`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 413, description = "`metadata.size` exceeds `uploads.max_size` (`upload_too_large`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database, storage or the rate limiter unavailable (`rate_limit_unavailable` with `rate_limit.redis.on_error = \"deny\"`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn create_multipart(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<MultipartCreated>, UppyError> {
    let caller = Caller::of(depot)?;
    let state = &caller.state;
    let body: CreateMultipart = super::read_body(req, state).await?;
    let metadata = body
        .metadata
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(text) => (name, text),
            other => (name, other.to_string()),
        })
        .collect();
    let file = Announced {
        filename: body.filename,
        content_type: body.content_type,
        metadata,
    };
    let asset = issue(&caller, file).await?.asset;
    let upload_id = start(state, &asset).await?;
    tracing::info!(asset_id = %asset.id, "started an Uppy multipart upload");
    Ok(Json(MultipartCreated {
        upload_id,
        key: asset.storage_key,
    }))
}

async fn start(state: &AppState, asset: &Asset) -> Result<String, AppError> {
    let storage = storage_of(state)?;
    let total = asset.content_length.ok_or_else(|| {
        ValidationError::new("metadata.size", "is required for a multipart upload")
    })?;
    if let Some(previous) = &asset.multipart {
        super::super::parts::abort_quietly(storage, asset, previous).await;
    }
    // Uppy asks for a part's URL before it reads the part: it declares no part checksums.
    let upload_id = storage
        .start(&asset.storage_key, asset.content_type.as_ref(), false)
        .await?;
    let upload = MultipartUpload {
        upload_id,
        part_size: uppy_part_size(total),
        part_checksums: false,
    };
    state
        .assets
        .set_multipart(&asset.owner, asset.id, Some(&upload))
        .await?;
    Ok(upload.upload_id)
}

/// The pending multipart upload `upload_id` of the asset `key` names.
pub(super) async fn upload_of(
    caller: &Caller,
    req: &Request,
) -> Result<(Asset, MultipartUpload, u64), AppError> {
    let asset = super::asset_for_key(caller, req).await?;
    let upload_id = req.param::<String>("upload_id").unwrap_or_default();
    match (&asset.multipart, asset.content_length) {
        _ if asset.status == AssetStatus::Complete => Err(AppError::UploadAlreadyComplete),
        (Some(upload), Some(total)) if upload.upload_id == upload_id => {
            let upload = upload.clone();
            Ok((asset, upload, total))
        }
        _ => Err(AppError::NotMultipart),
    }
}

/// Sign the URL of one part (Uppy's `signPart`); also at `/uppy/s3/multipart/...`.
#[endpoint(
    operation_id = "uppySignPart",
    tags("uppy"),
    parameters(
        ("token" = String, Path, description = "A delegated upload token"),
        ("upload_id" = String, Path, description = "The upload's id"),
        ("part_number" = u32, Path, description = "1-based part number"),
        ("key" = String, Query, description = "The upload's key"),
    ),
    responses(
        (status_code = 200, description = "PUT the part's bytes to `url`", body = PartUrl),
        (status_code = 400, description = "The part number is out of range, or `key` missing (`validation_failed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "The token did not create this upload (`token_scope`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No upload of the caller has this key (`asset_not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "Complete already (`upload_already_complete`) or not this multipart upload (`not_multipart`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database, storage or the rate limiter unavailable (`rate_limit_unavailable` with `rate_limit.redis.on_error = \"deny\"`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn sign_part(req: &mut Request, depot: &mut Depot) -> Result<Json<PartUrl>, UppyError> {
    let caller = Caller::of(depot)?;
    let state = &caller.state;
    let (asset, upload, total) = upload_of(&caller, req).await?;
    let count = upload.part_count(total);
    let part_number = req
        .param::<u32>("part_number")
        .filter(|n| (1..=count).contains(n))
        .ok_or_else(|| {
            AppError::from(ValidationError::new(
                "part_number",
                format!("must be between 1 and {count}"),
            ))
        })?;
    let expires = state.settings.uploads.default_expires_in;
    let expires_in = std::time::Duration::from_secs(expires);
    let part = PartSpec {
        number: part_number,
        size: upload.part_len(part_number, total),
        checksum_sha256: None,
    };
    let url = storage_of(state)?
        .presign_part(&asset.storage_key, &upload.upload_id, &part, expires_in)
        .await
        .map_err(AppError::from)?
        .url;
    state
        .assets
        .extend_upload(&asset.owner, asset.id, super::super::now_plus(expires_in))
        .await
        .map_err(AppError::from)?;
    Ok(Json(PartUrl { url, expires }))
}

/// List the parts storage holds (Uppy's `listParts`); also at `/uppy/s3/multipart/...`.
#[endpoint(
    operation_id = "uppyListParts",
    tags("uppy"),
    parameters(
        ("token" = String, Path, description = "A delegated upload token"),
        ("upload_id" = String, Path, description = "The upload's id"),
        ("key" = String, Query, description = "The upload's key"),
    ),
    responses(
        (status_code = 200, description = "The parts uploaded so far", body = Vec<StoredPart>),
        (status_code = 400, description = "No `key`, an empty one, or one with control characters (`validation_failed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "The token did not create this upload (`token_scope`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No upload of the caller has this key (`asset_not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "Complete already (`upload_already_complete`) or not this multipart upload (`not_multipart`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database, storage or the rate limiter unavailable (`rate_limit_unavailable` with `rate_limit.redis.on_error = \"deny\"`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn list_parts(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<Vec<StoredPart>>, UppyError> {
    let caller = Caller::of(depot)?;
    let state = &caller.state;
    let (asset, upload, _) = upload_of(&caller, req).await?;
    let mut parts = storage_of(state)?
        .list_parts(&asset.storage_key, &upload.upload_id)
        .await
        .map_err(AppError::from)?;
    parts.sort_by_key(|part| part.part_number);
    Ok(Json(
        parts
            .into_iter()
            .map(|part| StoredPart {
                part_number: part.part_number,
                etag: part.etag,
                size: part.size,
            })
            .collect(),
    ))
}
