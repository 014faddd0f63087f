//! Multipart uploads: starting one when `POST /api/upload` asks for it, and
//! `POST /api/upload/{asset_id}/parts`, which signs more part URLs (to continue or resume) and
//! lists the parts storage already holds.
//!
//! An upload started with `part_checksums` signs each part with the SHA-256 the client
//! declares for it here; the declarations are recorded before the URLs exist, and completion
//! (`status`) checks the parts storage holds against them.

use std::collections::BTreeMap;
use std::time::Duration;

use salvo::oapi::{ToSchema, endpoint};
use salvo::prelude::Json;
use salvo::{Depot, Request};
use serde::{Deserialize, Serialize};

use super::query::no_query;
use super::{Caller, expiry, json::read_json, rfc3339};
use crate::domain::{
    Asset, AssetId, AssetStatus, MultipartUpload, Sha256Checksum, ValidationError,
};
use crate::error::{AppError, ProblemDetails};
use crate::state::AppState;
use crate::storage::{MultipartStorage, PartSpec, StoredPart};

/// One part to upload: `PUT` exactly `size` bytes to `url` with every header in `headers`;
/// keep the `ETag` header storage answers, to complete the upload.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = PartUrl))]
pub struct PartUrl {
    part_number: u32,
    url: String,
    size: u64,
    /// Headers the `PUT` must carry, exactly as given: on S3, a part signed with its SHA-256
    /// carries it as `x-amz-checksum-sha256`. Empty when there is nothing to add.
    headers: BTreeMap<String, String>,
}

/// A multipart upload and the first (or requested) part URLs.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = MultipartInfo))]
pub struct MultipartInfo {
    pub upload_id: String,
    /// Size of every part but the last.
    pub part_size: u64,
    pub part_count: u32,
    /// Each part is signed with the SHA-256 declared for it: sign parts with `parts` in
    /// `POST /api/upload/{asset_id}/parts` (none are signed before).
    pub part_checksums: bool,
    /// Most parts one `POST /api/upload/{asset_id}/parts` signs (`uploads.max_presigned_parts`).
    pub max_parts_per_request: u32,
    pub parts: Vec<PartUrl>,
}

/// Which parts to sign: `part_numbers`, or for an upload started with `part_checksums`,
/// `parts` with each part's SHA-256.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = PartsRequest, example = json!({ "part_numbers": [101, 102, 103] })))]
struct PartsRequest {
    /// 1-based part numbers, at most `uploads.max_presigned_parts` of them (uploads without
    /// part checksums). An empty list (of either form) signs nothing and only lists what
    /// storage holds.
    part_numbers: Option<Vec<u32>>,
    /// The parts to sign and their SHA-256, at most `uploads.max_presigned_parts` of them
    /// (uploads started with `part_checksums`). A part declared again replaces its earlier
    /// declaration; completion checks what storage holds against the last one.
    parts: Option<Vec<DeclaredPart>>,
    /// Lifetime of the URLs in seconds (default `uploads.default_expires_in`).
    #[salvo(schema(minimum = 1))]
    expires_in: Option<u64>,
}

/// A part to sign with its checksum.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = DeclaredPart))]
struct DeclaredPart {
    part_number: u32,
    /// Base64 SHA-256 of exactly this part's bytes.
    checksum_sha256: String,
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
    /// The SHA-256 storage computed for the part, when it reports one.
    checksum_sha256: Option<String>,
}

/// Starts a multipart upload for `asset` (aborting one an earlier request started) and signs
/// its first parts.
pub async fn start(
    state: &AppState,
    asset: &Asset,
    expires_in: Duration,
    part_checksums: bool,
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
        .start(
            &asset.storage_key,
            asset.content_type.as_ref(),
            part_checksums,
        )
        .await?;
    let upload = MultipartUpload {
        upload_id,
        part_size: state.settings.uploads.part_size_for(total),
        part_checksums,
    };
    state
        .assets
        .set_multipart(&asset.owner, asset.id, Some(&upload))
        .await?;
    // A part with a checksum is signed once the client has declared it.
    let first = if part_checksums {
        0
    } else {
        upload
            .part_count(total)
            .min(state.settings.uploads.max_presigned_parts)
    };
    let parts = (1..=first).map(|n| (n, None)).collect();
    let signed = sign(storage, asset, &upload, total, parts, expires_in).await?;
    Ok(MultipartInfo {
        max_parts_per_request: state.settings.uploads.max_presigned_parts,
        ..signed
    })
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

/// Signs the URLs of `wanted` parts, each with its checksum when one is given
/// (`max_parts_per_request` is left for the caller to fill in).
async fn sign(
    storage: &dyn MultipartStorage,
    asset: &Asset,
    upload: &MultipartUpload,
    total: u64,
    wanted: Vec<(u32, Option<Sha256Checksum>)>,
    expires_in: Duration,
) -> Result<MultipartInfo, AppError> {
    let mut parts = Vec::with_capacity(wanted.len());
    for (part_number, checksum) in wanted {
        let size = upload.part_len(part_number, total);
        let part = PartSpec {
            number: part_number,
            size,
            checksum_sha256: checksum.as_ref(),
        };
        let signed = storage
            .presign_part(&asset.storage_key, &upload.upload_id, &part, expires_in)
            .await?;
        parts.push(PartUrl {
            part_number,
            url: signed.url,
            size,
            headers: signed.headers,
        });
    }
    Ok(MultipartInfo {
        upload_id: upload.upload_id.clone(),
        part_size: upload.part_size,
        part_count: upload.part_count(total),
        part_checksums: upload.part_checksums,
        max_parts_per_request: 0,
        parts,
    })
}

/// The parts a request asks to sign, with their declared checksums, checked against the
/// upload: `part_numbers` without part checksums, `parts` with them; 1 to `max` distinct
/// parts between 1 and `count`.
fn wanted_parts(
    body: PartsRequest,
    part_checksums: bool,
    count: u32,
    max: u32,
) -> Result<Vec<(u32, Option<Sha256Checksum>)>, ValidationError> {
    let (field, wanted) = match (body.part_numbers, body.parts, part_checksums) {
        // Only the listing of what storage holds.
        (Some(numbers), None, _) if numbers.is_empty() => return Ok(Vec::new()),
        (None, Some(parts), _) if parts.is_empty() => return Ok(Vec::new()),
        (Some(numbers), None, false) => (
            "part_numbers",
            numbers.into_iter().map(|n| (n, None)).collect::<Vec<_>>(),
        ),
        (None, Some(parts), true) => {
            let mut wanted = Vec::with_capacity(parts.len());
            for part in parts {
                let checksum = Sha256Checksum::parse(&part.checksum_sha256).map_err(|_| {
                    ValidationError::new(
                        "parts",
                        format!(
                            "part {}: checksum_sha256 must be the base64 of a SHA-256 digest",
                            part.part_number
                        ),
                    )
                })?;
                wanted.push((part.part_number, Some(checksum)));
            }
            ("parts", wanted)
        }
        (_, _, true) => {
            return Err(ValidationError::new(
                "parts",
                "this upload signs each part with its SHA-256: send `parts` as \
                 [{\"part_number\": n, \"checksum_sha256\": \"<base64>\"}], not `part_numbers`",
            ));
        }
        (_, _, false) => {
            return Err(ValidationError::new(
                "part_numbers",
                "send `part_numbers` alone: this upload was started without part_checksums",
            ));
        }
    };
    if wanted.len() > max as usize {
        return Err(ValidationError::new(
            field,
            format!("must list at most {max} parts"),
        ));
    }
    if let Some((bad, _)) = wanted.iter().find(|(n, _)| *n == 0 || *n > count) {
        return Err(ValidationError::new(
            field,
            format!("{bad} is not between 1 and {count}"),
        ));
    }
    let mut numbers: Vec<u32> = wanted.iter().map(|(n, _)| *n).collect();
    numbers.sort_unstable();
    if let Some(twice) = numbers.windows(2).find(|w| w[0] == w[1]) {
        return Err(ValidationError::new(
            field,
            format!("part {} is listed twice", twice[0]),
        ));
    }
    Ok(wanted)
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
        (status_code = 400, description = "A part number is out of range or listed twice, too many are asked, a checksum is not a base64 SHA-256, or `part_numbers` / `parts` does not match how the upload was started (`validation_failed`)", content_type = "application/problem+json", body = ProblemDetails),
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
    let wanted = wanted_parts(
        body,
        upload.part_checksums,
        upload.part_count(total),
        uploads.max_presigned_parts,
    )?;
    if upload.part_checksums {
        // Recorded before any URL carrying them exists.
        let declared: Vec<(u32, Sha256Checksum)> = wanted
            .iter()
            .filter_map(|(n, c)| c.clone().map(|c| (*n, c)))
            .collect();
        state.assets.declare_parts(id, &declared).await?;
    }
    let uploaded = storage
        .list_parts(&asset.storage_key, &upload.upload_id)
        .await?;
    let signed = MultipartInfo {
        max_parts_per_request: uploads.max_presigned_parts,
        ..sign(storage, &asset, upload, total, wanted, expires_in).await?
    };
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
            checksum_sha256: part.checksum_sha256.map(|c| c.as_str().to_owned()),
        }
    }
}
