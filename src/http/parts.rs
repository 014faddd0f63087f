//! Multipart uploads: starting one when `POST /api/upload` asks for it, and
//! `POST /api/upload/{asset_id}/parts`, which signs more part URLs (to continue or resume) and
//! lists the parts storage already holds.

use std::time::Duration;

use salvo::oapi::{ToSchema, endpoint};
use salvo::prelude::Json;
use salvo::{Depot, Request};
use serde::{Deserialize, Serialize};

use super::query::no_query;
use super::{Caller, expiry, json::read_json, rfc3339};
use crate::domain::{Asset, AssetId, AssetStatus, MultipartUpload, ValidationError};
use crate::error::{AppError, ProblemDetails};
use crate::state::AppState;
use crate::storage::{MultipartStorage, StoredPart};

/// One part to upload: `PUT` exactly `size` bytes to `url`; keep the `ETag` header storage
/// answers, to complete the upload.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = PartUrl))]
pub struct PartUrl {
    part_number: u32,
    url: String,
    size: u64,
}

/// A multipart upload and the first (or requested) part URLs.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = MultipartInfo))]
pub struct MultipartInfo {
    pub upload_id: String,
    /// Size of every part but the last.
    pub part_size: u64,
    pub part_count: u32,
    pub parts: Vec<PartUrl>,
}

/// Which parts to sign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = PartsRequest, example = json!({ "part_numbers": [101, 102, 103] })))]
struct PartsRequest {
    /// 1-based part numbers, at most `uploads.max_presigned_parts` of them.
    part_numbers: Vec<u32>,
    /// Lifetime of the URLs in seconds (default `uploads.default_expires_in`).
    #[salvo(schema(minimum = 1))]
    expires_in: Option<u64>,
}

/// Part URLs, and what storage already holds.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = PartsResponse))]
struct PartsResponse {
    #[salvo(schema(format = "uuid"))]
    asset_id: String,
    #[serde(flatten)]
    upload: MultipartInfo,
    /// Parts storage holds already, with their ETags: a client resuming after a crash
    /// uploads only the others.
    uploaded: Vec<StoredPartInfo>,
    #[salvo(schema(format = DateTime))]
    expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = StoredPart))]
struct StoredPartInfo {
    part_number: u32,
    /// Absent when storage does not report part ETags.
    etag: Option<String>,
    size: u64,
}

/// Starts a multipart upload for `asset` (aborting one an earlier request started) and signs
/// its first parts.
pub async fn start(
    state: &AppState,
    asset: &Asset,
    expires_in: Duration,
) -> Result<MultipartInfo, AppError> {
    let storage = state
        .storage
        .multipart()
        .ok_or(AppError::MultipartNotSupported)?;
    let total = asset.content_length.ok_or_else(|| {
        ValidationError::new("content_length", "is required for a multipart upload")
    })?;
    if let Some(previous) = &asset.multipart {
        abort_quietly(storage, asset, previous).await;
    }
    let upload_id = storage
        .start(&asset.storage_key, asset.content_type.as_ref())
        .await?;
    let upload = MultipartUpload {
        upload_id,
        part_size: state.settings.uploads.part_size_for(total),
    };
    state
        .assets
        .set_multipart(&asset.owner, asset.id, Some(&upload))
        .await?;
    let first = upload
        .part_count(total)
        .min(state.settings.uploads.max_presigned_parts);
    sign(
        storage,
        asset,
        &upload,
        total,
        (1..=first).collect(),
        expires_in,
    )
    .await
}

/// Aborts `upload` of `asset`, logging (not failing) when storage refuses: an unfinished
/// upload is only storage a lifecycle rule or the sweeper reclaims later.
pub async fn abort_quietly(
    storage: &dyn MultipartStorage,
    asset: &Asset,
    upload: &MultipartUpload,
) {
    if let Err(error) = storage.abort(&asset.storage_key, &upload.upload_id).await {
        tracing::warn!(asset_id = %asset.id, error = %crate::error::error_chain(&error), "could not abort a multipart upload");
    }
}

async fn sign(
    storage: &dyn MultipartStorage,
    asset: &Asset,
    upload: &MultipartUpload,
    total: u64,
    numbers: Vec<u32>,
    expires_in: Duration,
) -> Result<MultipartInfo, AppError> {
    let mut parts = Vec::with_capacity(numbers.len());
    for part_number in numbers {
        let size = upload.part_len(part_number, total);
        let url = storage
            .presign_part(
                &asset.storage_key,
                &upload.upload_id,
                part_number,
                size,
                expires_in,
            )
            .await?;
        parts.push(PartUrl {
            part_number,
            url,
            size,
        });
    }
    Ok(MultipartInfo {
        upload_id: upload.upload_id.clone(),
        part_size: upload.part_size,
        part_count: upload.part_count(total),
        parts,
    })
}

/// Sign more part URLs of a multipart upload, and list the parts storage holds.
#[endpoint(
    operation_id = "signParts",
    tags("assets"),
    security(("bearer_token" = []), ("api_key" = [])),
    request_body = PartsRequest,
    parameters(("asset_id" = String, Path, description = "Id of the asset")),
    responses(
        (status_code = 200, description = "Part URLs and the parts already uploaded", body = PartsResponse),
        (status_code = 400, description = "A part number is out of range or too many are asked (`validation_failed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No such asset (`asset_not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "The asset is complete (`upload_already_complete`) or not uploaded in parts (`not_multipart`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database, storage or the rate limiter (`rate_limit_unavailable`) unavailable", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "The delegated upload token did not create this asset, or may not do this to it (`token_scope`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 413, description = "The body exceeds 64 KiB (`body_too_large`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 415, description = "The body is not `application/json` (`unsupported_media_type`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn sign_parts(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<PartsResponse>, AppError> {
    no_query(req)?;
    let caller = Caller::of(depot)?;
    let state = &caller.state;
    let id = AssetId::parse(&req.param::<String>("asset_id").unwrap_or_default())?;
    let body: PartsRequest = read_json(req, &state.settings).await?;
    let uploads = &state.settings.uploads;
    let expires_in = expiry(
        body.expires_in,
        uploads.default_expires_in,
        uploads.max_expires_in,
    )?;

    let asset = caller.find_owned(id).await?;
    if asset.status == AssetStatus::Complete {
        return Err(AppError::UploadAlreadyComplete);
    }
    let (Some(upload), Some(total), Some(storage)) = (
        &asset.multipart,
        asset.content_length,
        state.storage.multipart(),
    ) else {
        return Err(AppError::NotMultipart);
    };
    let count = upload.part_count(total);
    if body.part_numbers.is_empty()
        || body.part_numbers.len() > uploads.max_presigned_parts as usize
    {
        return Err(ValidationError::new(
            "part_numbers",
            format!(
                "must list 1 to {} part numbers",
                uploads.max_presigned_parts
            ),
        )
        .into());
    }
    if let Some(bad) = body.part_numbers.iter().find(|n| **n == 0 || **n > count) {
        return Err(ValidationError::new(
            "part_numbers",
            format!("{bad} is not between 1 and {count}"),
        )
        .into());
    }
    let uploaded = storage
        .list_parts(&asset.storage_key, &upload.upload_id)
        .await?;
    let signed = sign(
        storage,
        &asset,
        upload,
        total,
        body.part_numbers,
        expires_in,
    )
    .await?;
    let expires_at = super::now_plus(expires_in);
    state
        .assets
        .extend_upload(&caller.owner, id, expires_at)
        .await?;
    Ok(Json(PartsResponse {
        asset_id: id.to_string(),
        upload: signed,
        uploaded: uploaded.into_iter().map(StoredPartInfo::from).collect(),
        expires_at: rfc3339(expires_at),
    }))
}

impl From<StoredPart> for StoredPartInfo {
    fn from(part: StoredPart) -> Self {
        Self {
            part_number: part.part_number,
            etag: part.etag,
            size: part.size,
        }
    }
}
