//! `POST /api/upload`: record a pending asset and sign the request that uploads its bytes.

use std::collections::BTreeMap;
use std::time::Duration;

use salvo::http::StatusCode;
use salvo::oapi::ToSchema;
use salvo::oapi::endpoint;
use salvo::prelude::Json;
use salvo::{Depot, Request, Response};
use serde::{Deserialize, Serialize};

use super::parts::{self, MultipartInfo};
use super::query::no_query;
use super::{Caller, expiry, json::read_json, rfc3339};
use crate::config::{Limits, Settings, StorageBackend};
use crate::db::{IssueOutcome, NewUpload, Quota};
use crate::domain::{
    AssetId, AssetStatus, ContentType, ObjectKey, Sha256Checksum, ValidationError, storage_key,
};
use crate::error::{AppError, ProblemDetails};
use crate::state::AppState;
use crate::storage::{SignedUpload, UploadSpec};

/// What a client wants to upload.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = UploadRequest, example = json!({
    "object_key": "photos/cat.png",
    "content_type": "image/png",
    "content_length": 48213,
    "expires_in": 300
})))]
struct UploadRequest {
    /// Name of the asset, unique per owner: 1-1024 bytes, no leading '/', no '.' or '..'
    /// segments, no backslashes or control characters.
    #[salvo(schema(min_length = 1, max_length = 1024))]
    object_key: String,
    /// Lifetime of the signed URL in seconds (default `uploads.default_expires_in`, at most
    /// `uploads.max_expires_in`).
    #[salvo(schema(minimum = 1))]
    expires_in: Option<u64>,
    /// Media type the upload must be sent with.
    content_type: Option<String>,
    /// Exact size of the file in bytes. Without it, the upload is a form POST limited to
    /// `uploads.max_size`.
    content_length: Option<u64>,
    /// Base64 SHA-256 of the file; storage refuses any other bytes. Requires `content_length`.
    checksum_sha256: Option<String>,
    /// Upload in parts (requires `content_length`). Files larger than
    /// `uploads.multipart_threshold` are uploaded in parts unless this is `false`.
    multipart: Option<bool>,
    /// When the upload goes in parts, sign each part with the SHA-256 the client declares
    /// for it in `POST /api/upload/{asset_id}/parts` (no part URL is signed before): storage
    /// refuses a part whose bytes differ, and completion checks the parts storage holds
    /// without reading the object back. Ignored for uploads in one request.
    part_checksums: Option<bool>,
}

/// How to send the file to storage, by `method`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "method")]
#[salvo(schema(name = SignedInfo))]
enum SignedInfo {
    /// Send the file as the body of a `PUT` to `url` with exactly `headers`.
    #[serde(rename = "PUT")]
    Put {
        url: String,
        /// Headers the PUT must carry, exactly as given.
        headers: BTreeMap<String, String>,
    },
    /// Send a `multipart/form-data` `POST` to `url` with every entry of `fields`, then the
    /// file in a field named `file`, last.
    #[serde(rename = "POST")]
    Post {
        url: String,
        /// Form fields the POST must carry before the file.
        fields: BTreeMap<String, String>,
    },
    /// `PUT` each part to its URL, then complete with every part's ETag; sign more parts
    /// with `POST /api/upload/{asset_id}/parts`.
    #[serde(rename = "MULTIPART")]
    Multipart(MultipartInfo),
}

/// A pending asset and the signed request that uploads it.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = UploadResponse))]
struct UploadResponse {
    /// Id of the asset.
    #[salvo(schema(format = "uuid"))]
    asset_id: String,
    /// Always `pending` until the upload is marked complete.
    status: AssetStatus,
    /// When the signed request stops working (RFC 3339).
    #[salvo(schema(format = DateTime))]
    expires_at: String,
    signed_info: SignedInfo,
}

/// A request whose every field has been checked.
struct ValidUpload {
    object_key: ObjectKey,
    content_type: Option<ContentType>,
    content_length: Option<u64>,
    checksum_sha256: Option<Sha256Checksum>,
    expires_in: Duration,
    /// Upload in parts; decided against what storage offers.
    multipart: bool,
    /// Sign each part with its declared SHA-256 (when in parts).
    part_checksums: bool,
}

impl UploadRequest {
    fn validate(
        self,
        settings: &Settings,
        limits: &Limits,
        parts_supported: bool,
    ) -> Result<ValidUpload, AppError> {
        let uploads = &settings.uploads;
        let object_key = ObjectKey::parse(&self.object_key)?;
        let content_type = self
            .content_type
            .as_deref()
            .map(ContentType::parse)
            .transpose()?;
        if !uploads.allows_any_content_type() {
            let Some(content_type) = &content_type else {
                return Err(ValidationError::new(
                    "content_type",
                    format!(
                        "is required; allowed: {}",
                        uploads.allowed_content_types.join(", ")
                    ),
                )
                .into());
            };
            if !uploads.allows_content_type(content_type.as_str()) {
                return Err(AppError::ContentTypeNotAllowed(content_type.to_string()));
            }
        }
        let max_size = limits.max_size;
        if let Some(declared) = self.content_length
            && declared > max_size
        {
            return Err(AppError::UploadTooLarge { declared, max_size });
        }
        let checksum_sha256 = self
            .checksum_sha256
            .as_deref()
            .map(Sha256Checksum::parse)
            .transpose()?;
        let multipart = decide_multipart(
            self.multipart,
            self.content_length,
            uploads,
            parts_supported,
        )?;
        // Parts signed with their SHA-256 are checked as surely as a declared file checksum.
        let part_checksums = multipart && self.part_checksums.unwrap_or(false);
        if checksum_sha256.is_none() && !part_checksums && uploads.require_checksum {
            return Err(ValidationError::new(
                "checksum_sha256",
                "is required by this server (or, for an upload in parts, part_checksums)",
            )
            .into());
        }
        if checksum_sha256.is_some() && self.content_length.is_none() {
            return Err(ValidationError::new("checksum_sha256", "requires content_length").into());
        }
        let expires_in = expiry(
            self.expires_in,
            uploads.default_expires_in,
            uploads.max_expires_in,
        )?;
        Ok(ValidUpload {
            object_key,
            content_type,
            content_length: self.content_length,
            checksum_sha256,
            expires_in,
            multipart,
            part_checksums,
        })
    }
}

/// S3 takes at most 5 GiB in one request.
const MAX_SINGLE_REQUEST: u64 = 5 * 1024 * 1024 * 1024;

/// Whether an upload goes in parts: when asked, or when it is too large for one request.
fn decide_multipart(
    asked: Option<bool>,
    content_length: Option<u64>,
    uploads: &crate::config::UploadSettings,
    parts_supported: bool,
) -> Result<bool, AppError> {
    match (asked, content_length) {
        (Some(true), None) => {
            Err(ValidationError::new("content_length", "is required for a multipart upload").into())
        }
        (Some(true), Some(_)) if !parts_supported => Err(AppError::MultipartNotSupported),
        (Some(true), Some(_)) => Ok(true),
        (Some(false), Some(length)) if parts_supported && length > MAX_SINGLE_REQUEST => Err(
            ValidationError::new("multipart", "files over 5 GiB must be uploaded in parts").into(),
        ),
        (Some(false), _) | (None, None) => Ok(false),
        (None, Some(length)) => Ok(parts_supported
            && (length > uploads.multipart_threshold || length > MAX_SINGLE_REQUEST)),
    }
}

/// Issue a signed upload URL.
///
/// Creates a pending asset (201), or re-issues a fresh signature for the caller's pending
/// asset with the same `object_key` (200, same `asset_id`, declared values replaced).
#[endpoint(
    operation_id = "issueUpload",
    tags("assets"),
    security(("bearer_token" = []), ("api_key" = [])),
    request_body = UploadRequest,
    responses(
        (status_code = 201, description = "A new pending asset", body = UploadResponse),
        (status_code = 200, description = "The pending asset with this key, re-signed", body = UploadResponse),
        (status_code = 400, description = "A field is invalid (`validation_failed`) or the body is not JSON (`malformed_body`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "The asset with this key is already complete (`upload_already_complete`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 413, description = "`content_length` exceeds `uploads.max_size` (`upload_too_large`) or the body exceeds 64 KiB (`body_too_large`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 415, description = "The body is not `application/json` (`unsupported_media_type`), or `content_type` is not allowed (`content_type_not_allowed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "A quota would be exceeded (`quota_exceeded`; `quota` says which), or the upload is outside the delegated token's scope (`token_scope`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database, storage or the rate limiter (`rate_limit_unavailable`) unavailable", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn presign_upload(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), AppError> {
    no_query(req)?;
    let Caller {
        state,
        owner,
        scope,
    } = Caller::of(depot)?;
    let mut limits = state.settings.uploads.limits_for(&owner);
    let upload = read_json::<UploadRequest>(req, &state.settings)
        .await?
        .validate(
            &state.settings,
            &limits,
            state.storage.multipart().is_some(),
        )?;
    if let Some(scope) = &scope {
        scope.check_upload(
            &upload.object_key,
            upload.content_type.as_ref(),
            upload.content_length,
        )?;
        // Storage caps an undeclared size (POST form) at the token's limit too.
        limits.max_size = scope.max_size_within(limits.max_size);
    }

    let id = AssetId::generate();
    let expires_at = super::now_plus(upload.expires_in);
    let storage_key = storage_key(
        &state.settings.storage.key_prefix,
        &owner,
        id,
        &upload.object_key,
    );
    check_storage_key(&storage_key, state.settings.storage.backend)?;
    let new = NewUpload {
        id,
        storage_key,
        owner,
        object_key: upload.object_key,
        bucket: state.settings.storage.bucket.clone(),
        content_type: upload.content_type,
        content_length: upload.content_length,
        checksum_sha256: upload.checksum_sha256,
        upload_expires_at: expires_at,
        scope,
    };
    let quota = Quota {
        max_pending_uploads: limits.max_pending_uploads,
        max_total_bytes: limits.max_total_bytes,
        max_size: limits.max_size,
    };
    let (asset, status) = match state.assets.issue_upload(&new, quota).await? {
        IssueOutcome::Created(asset) => {
            state.metrics.asset_created();
            (asset, StatusCode::CREATED)
        }
        IssueOutcome::Reissued(asset) => {
            discard_stored_object(&state, &asset).await?;
            (asset, StatusCode::OK)
        }
        IssueOutcome::AlreadyComplete => return Err(AppError::UploadAlreadyComplete),
        IssueOutcome::QuotaExceeded(exceeded) => return Err(AppError::QuotaExceeded(exceeded)),
        IssueOutcome::OutOfScope(refusal) => return Err(AppError::TokenScope(refusal)),
    };
    let signed_info = if upload.multipart {
        SignedInfo::Multipart(
            parts::start(&state, &asset, upload.expires_in, upload.part_checksums).await?,
        )
    } else {
        if let (Some(previous), Some(storage)) = (&asset.multipart, state.storage.multipart()) {
            // A re-issue that no longer goes in parts: the earlier parts are useless.
            parts::abort_quietly(storage, &asset, previous).await;
            state
                .assets
                .set_multipart(&asset.owner, asset.id, None)
                .await?;
        }
        single_request(&state, &asset, limits.max_size, upload.expires_in).await?
    };
    tracing::info!(asset_id = %asset.id, created = status == StatusCode::CREATED, "issued upload URL");
    res.status_code(status);
    res.render(Json(UploadResponse {
        asset_id: asset.id.to_string(),
        status: asset.status,
        expires_at: rfc3339(asset.upload_expires_at),
        signed_info,
    }));
    Ok(())
}

/// Refuses, naming `object_key`, a key that storage could not hold once it sits under
/// `<key_prefix>/<owner>/<asset_id>/`: S3 takes keys of at most 1024 bytes, file systems
/// names of at most 255 bytes. Checked before anything is recorded, so an accepted upload can
/// always be stored.
pub(super) fn check_storage_key(
    storage_key: &str,
    backend: StorageBackend,
) -> Result<(), ValidationError> {
    const S3_MAX_KEY_BYTES: usize = 1024;
    const FS_MAX_NAME_BYTES: usize = 255;
    let too_long = storage_key.len() > S3_MAX_KEY_BYTES;
    let long_name = storage_key.split('/').map(str::len).max().unwrap_or(0);
    match backend {
        _ if too_long => Err(ValidationError::new(
            "object_key",
            format!(
                "is too long for storage: under its prefix the stored key is {} bytes, at most {S3_MAX_KEY_BYTES} fit",
                storage_key.len()
            ),
        )),
        StorageBackend::Local if long_name > FS_MAX_NAME_BYTES => Err(ValidationError::new(
            "object_key",
            format!(
                "has a segment of {long_name} bytes; file systems take at most {FS_MAX_NAME_BYTES}"
            ),
        )),
        _ => Ok(()),
    }
}

/// A signed `PUT` (size declared) or `POST` form (size not declared) for the whole file.
/// A re-issued pending asset starts afresh: whatever an earlier URL stored is removed, so the
/// new URL (a conditional write on S3) can store the file.
pub(super) async fn discard_stored_object(
    state: &AppState,
    asset: &crate::domain::Asset,
) -> Result<(), AppError> {
    state.storage.delete(&asset.storage_key).await?;
    Ok(())
}

async fn single_request(
    state: &AppState,
    asset: &crate::domain::Asset,
    max_size: u64,
    expires_in: Duration,
) -> Result<SignedInfo, AppError> {
    let signed = state
        .storage
        .presign_upload(&UploadSpec {
            storage_key: &asset.storage_key,
            content_type: asset.content_type.as_ref(),
            content_length: asset.content_length,
            checksum_sha256: asset.checksum_sha256.as_ref(),
            max_size,
            expires_in,
        })
        .await?;
    Ok(match signed {
        SignedUpload::Put { url, headers } => SignedInfo::Put { url, headers },
        SignedUpload::Post { url, fields } => SignedInfo::Post { url, fields },
    })
}
