//! Turning a file Uppy announces into a pending asset: its name, declared type and size,
//! checked as `POST /api/upload` checks them, then recorded against the owner's quotas.

use std::collections::BTreeMap;

use crate::db::{IssueOutcome, NewUpload, Quota};
use crate::domain::{Asset, AssetId, ContentType, ObjectKey, ValidationError, storage_key};
use crate::error::AppError;
use crate::http::Caller;
use crate::state::AppState;

/// What Uppy tells about a file: its name, media type and metadata.
pub struct Announced {
    pub filename: String,
    pub content_type: String,
    pub metadata: BTreeMap<String, String>,
}

/// A pending asset issued for an announced file, and the largest body storage may take.
pub struct Issued {
    pub asset: Asset,
    pub max_size: u64,
}

/// Records (or re-issues) the pending asset of `file` for the caller.
pub async fn issue(caller: &Caller, file: Announced) -> Result<Issued, AppError> {
    let state = &caller.state;
    let owner = caller.owner.clone();
    let scope = caller.scope.clone();
    let uploads = &state.settings.uploads;
    let mut limits = uploads.limits_for(&owner);
    let object_key = object_key_of(
        &file,
        scope.as_ref().and_then(|s| s.object_key_prefix.as_deref()),
    )?;
    let content_type = Some(file.content_type.trim())
        .filter(|t| !t.is_empty())
        .map(ContentType::parse)
        .transpose()?;
    let size = declared_size(&file.metadata)?;
    check_content_type(state, content_type.as_ref())?;
    if let Some(declared) = size
        && declared > limits.max_size
    {
        return Err(AppError::UploadTooLarge {
            declared,
            max_size: limits.max_size,
        });
    }
    if let Some(scope) = &scope {
        scope.check_upload(&object_key, content_type.as_ref(), size)?;
        limits.max_size = scope.max_size_within(limits.max_size);
    }
    let id = AssetId::generate();
    let storage_key = storage_key(&state.settings.storage.key_prefix, &owner, id, &object_key);
    super::super::uploads::check_storage_key(&storage_key, state.settings.storage.backend)?;
    let new = NewUpload {
        id,
        storage_key,
        owner,
        object_key,
        bucket: state.settings.storage.bucket.clone(),
        content_type,
        content_length: size,
        checksum_sha256: None,
        upload_expires_at: super::super::now_plus(std::time::Duration::from_secs(
            uploads.default_expires_in,
        )),
        scope,
    };
    let quota = Quota {
        max_pending_uploads: limits.max_pending_uploads,
        max_total_bytes: limits.max_total_bytes,
        max_size: limits.max_size,
    };
    let asset = match state.assets.issue_upload(&new, quota).await? {
        IssueOutcome::Created(asset) => {
            state.metrics.asset_created();
            asset
        }
        IssueOutcome::Reissued(asset) => {
            crate::http::uploads::discard_stored_object(state, &asset).await?;
            asset
        }
        IssueOutcome::AlreadyComplete => return Err(AppError::UploadAlreadyComplete),
        IssueOutcome::QuotaExceeded(exceeded) => return Err(AppError::QuotaExceeded(exceeded)),
        IssueOutcome::OutOfScope(refusal) => return Err(AppError::TokenScope(refusal)),
    };
    let max_size = size.unwrap_or(limits.max_size);
    Ok(Issued { asset, max_size })
}

/// `metadata[object_key]` when given, else the file name, put under the token's prefix when
/// it is not there already.
fn object_key_of(file: &Announced, prefix: Option<&str>) -> Result<ObjectKey, ValidationError> {
    if let Some(key) = file.metadata.get("object_key") {
        return ObjectKey::parse(key);
    }
    match prefix {
        Some(prefix) if !file.filename.starts_with(prefix) => {
            ObjectKey::parse(&format!("{prefix}{}", file.filename))
        }
        _ => ObjectKey::parse(&file.filename),
    }
}

/// The exact size of the file, when Uppy's metadata carries it (`metadata[size]`).
fn declared_size(metadata: &BTreeMap<String, String>) -> Result<Option<u64>, ValidationError> {
    metadata
        .get("size")
        .map(|size| {
            size.parse::<u64>()
                .ok()
                .filter(|size| *size > 0)
                .ok_or_else(|| ValidationError::new("metadata[size]", "must be a positive integer"))
        })
        .transpose()
}

fn check_content_type(
    state: &AppState,
    content_type: Option<&ContentType>,
) -> Result<(), AppError> {
    let uploads = &state.settings.uploads;
    if uploads.allows_any_content_type() {
        return Ok(());
    }
    match content_type {
        None => Err(ValidationError::new(
            "type",
            format!(
                "is required; allowed: {}",
                uploads.allowed_content_types.join(", ")
            ),
        )
        .into()),
        Some(declared) if !uploads.allows_content_type(declared.as_str()) => {
            Err(AppError::ContentTypeNotAllowed(declared.to_string()))
        }
        Some(_) => Ok(()),
    }
}
