//! `PUT /api/status`: mark an upload complete once storage really holds it.

use salvo::oapi::{ToSchema, endpoint};
use salvo::prelude::Json;
use salvo::{Depot, Request};
use serde::{Deserialize, Serialize};

use super::query::no_query;
use super::{Caller, json::read_json};
use std::collections::BTreeMap;

use crate::domain::{
    Asset, AssetId, AssetStatus, CompositeChecksum, MultipartUpload, Sha256Checksum,
    composite_sha256,
};
use crate::error::{AppError, ProblemDetails};
use crate::state::AppState;
use crate::storage::{CompleteError, MultipartStorage, PartRef, StoredPart, UploadCheck};

/// The status a client reports for its upload.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = StatusRequest, example = json!({
    "asset_id": "01936f0e-4a9b-7c3e-9f51-2d7c0a8b6e42",
    "uploaded_status": "complete"
})))]
struct StatusRequest {
    /// Id returned by `POST /api/upload`.
    #[salvo(schema(format = "uuid"))]
    asset_id: String,
    /// `complete` (verified against storage) or `pending`.
    #[salvo(schema(value_type = AssetStatus))]
    uploaded_status: String,
    /// For a multipart upload: every part's number and the `ETag` storage answered for it.
    parts: Option<Vec<PartDto>>,
}

/// A part of a multipart upload.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = CompletedPart))]
pub(super) struct PartDto {
    pub(super) part_number: u32,
    pub(super) etag: String,
}

/// The asset's status after the change.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = StatusResponse))]
struct StatusResponse {
    success: bool,
    #[salvo(schema(format = "uuid"))]
    asset_id: String,
    uploaded_status: AssetStatus,
}

/// Mark an upload complete (or confirm it is still pending).
///
/// Completing checks storage: the object must exist and match the declared size and
/// checksum. Completing twice is harmless; a complete asset never goes back to pending.
#[endpoint(
    operation_id = "completeUpload",
    tags("assets"),
    security(("bearer_token" = []), ("api_key" = [])),
    request_body = StatusRequest,
    responses(
        (status_code = 200, description = "The asset now has the requested status", body = StatusResponse),
        (status_code = 400, description = "A field is invalid (`validation_failed`) or the body is not JSON (`malformed_body`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No such asset (`asset_not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "Nothing uploaded yet (`upload_not_found`), the stored object differs from what was declared (`upload_mismatch`), or complete → pending (`completion_irreversible`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 415, description = "The body is not `application/json`", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database, storage or the rate limiter (`rate_limit_unavailable`) unavailable", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "The delegated upload token did not create this asset, or may not do this to it (`token_scope`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn mark_status(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<StatusResponse>, AppError> {
    no_query(req)?;
    let caller = Caller::of(depot)?;
    let state = &caller.state;
    let body: StatusRequest = read_json(req, &state.settings).await?;
    let id = AssetId::parse(&body.asset_id)?;
    let requested: AssetStatus = body.uploaded_status.parse()?;

    let asset = caller.find_owned(id).await?;
    let status = match (requested, asset.status) {
        (AssetStatus::Pending, AssetStatus::Complete) => {
            return Err(AppError::CompletionIrreversible);
        }
        (_, current) if current == requested => current,
        (AssetStatus::Complete, _) => {
            complete_asset(state, &asset, body.parts.unwrap_or_default())
                .await?
                .status
        }
        (AssetStatus::Pending, _) => unreachable!("pending → pending matched above"),
    };
    Ok(Json(StatusResponse {
        success: true,
        asset_id: id.to_string(),
        uploaded_status: status,
    }))
}

/// Marks a pending `asset` complete once storage holds what was declared, assembling its
/// parts first when it is uploaded in parts, and freezes the object (see
/// [`crate::storage::Storage::seal`]); returns the asset as it now is. Shared by
/// `PUT /api/status` and the Uppy routes, so both verify the same way.
pub(super) async fn complete_asset(
    state: &AppState,
    asset: &Asset,
    parts: Vec<PartDto>,
) -> Result<Asset, AppError> {
    let composite = match &asset.multipart {
        Some(upload) => assemble_parts(state, asset, upload, parts).await?,
        None => None,
    };
    // Sealed before it is verified: what is verified is what stays.
    state.storage.seal(&asset.storage_key).await?;
    let stored_size = match verify_upload(state, asset, composite.as_ref()).await {
        Ok(size) => size,
        Err(refused) => {
            if let Err(error) = state.storage.unseal(&asset.storage_key).await {
                tracing::warn!(asset_id = %asset.id, error = %crate::error::error_chain(&error), "unsealing a refused upload failed");
            }
            return Err(refused);
        }
    };
    let completed = state
        .assets
        .mark_complete(&asset.owner, asset.id, stored_size, composite.as_ref())
        .await?
        .ok_or(AppError::AssetNotFound(asset.id))?;
    tracing::info!(asset_id = %asset.id, size = stored_size, "asset completed");
    state.metrics.asset_completed();
    Ok(completed)
}

/// Completes a multipart upload in storage from the client's list of parts, which must name
/// each part exactly once. For parts declared with their SHA-256, every part storage holds
/// must match its declaration (as storage reports it, or else as read back once assembled);
/// returns their composite checksum, to record.
async fn assemble_parts(
    state: &AppState,
    asset: &Asset,
    upload: &MultipartUpload,
    mut parts: Vec<PartDto>,
) -> Result<Option<CompositeChecksum>, AppError> {
    let Some(storage) = state.storage.multipart() else {
        return Err(AppError::MultipartNotSupported);
    };
    let total = asset.content_length.unwrap_or(0);
    parts.sort_by_key(|p| p.part_number);
    let stored = storage
        .list_parts(&asset.storage_key, &upload.upload_id)
        .await?;
    let declared = if upload.part_checksums {
        Some(state.assets.declared_parts(asset.id).await?)
    } else {
        None
    };
    let mut problems = part_problems(upload, total, &parts, &stored);
    if let Some(declared) = &declared {
        problems.extend(checksum_problems(
            upload.part_count(total),
            declared,
            &stored,
        ));
    }
    if !problems.is_empty() {
        return Err(AppError::UploadMismatch(format!(
            "send every part's number and ETag in `parts`; {}",
            problems.join("; ")
        )));
    }
    let refs: Vec<PartRef> = parts
        .into_iter()
        .map(|p| PartRef {
            checksum_sha256: declared
                .as_ref()
                .and_then(|d| d.get(&p.part_number).cloned()),
            part_number: p.part_number,
            etag: p.etag,
        })
        .collect();
    match storage
        .complete(&asset.storage_key, &upload.upload_id, &refs)
        .await
    {
        // Gone: completed by an earlier call whose answer was lost; the stat below decides.
        Ok(()) | Err(CompleteError::UploadGone) => {}
        Err(CompleteError::Rejected(reason)) => return Err(AppError::UploadMismatch(reason)),
        Err(CompleteError::Storage(error)) => return Err(error.into()),
    }
    let Some(declared) = declared else {
        return Ok(None);
    };
    let declared: Vec<Sha256Checksum> = declared.into_values().collect();
    // A store that kept no part checksums did not check the parts: read them back.
    let unchecked = stored.is_empty() || stored.iter().any(|p| p.checksum_sha256.is_none());
    if unchecked {
        check_read_back(storage, asset, upload, &declared).await?;
    }
    Ok(Some(CompositeChecksum {
        sha256: composite_sha256(&declared),
        part_size: upload.part_size,
    }))
}

/// Reads the assembled object back and compares each part's SHA-256 with its declaration.
async fn check_read_back(
    storage: &dyn MultipartStorage,
    asset: &Asset,
    upload: &MultipartUpload,
    declared: &[Sha256Checksum],
) -> Result<(), AppError> {
    let read = storage
        .hash_parts(&asset.storage_key, upload.part_size)
        .await?;
    tracing::info!(asset_id = %asset.id, parts = read.len(), "storage keeps no part checksums: read the parts back");
    let differing: Vec<String> = (1..)
        .zip(declared.iter().zip(&read))
        .filter(|(_, (declared, read))| declared != read)
        .map(|(n, _): (u32, _)| n.to_string())
        .collect();
    if read.len() != declared.len() || !differing.is_empty() {
        return Err(AppError::UploadMismatch(format!(
            "the stored bytes do not match the declared checksum_sha256 of parts: {}",
            if differing.is_empty() {
                format!(
                    "{} parts are stored, {} declared",
                    read.len(),
                    declared.len()
                )
            } else {
                differing.join(", ")
            }
        )));
    }
    Ok(())
}

/// What is wrong with the parts storage holds, against the checksums declared for parts
/// 1 to `count`: a part never declared, or one storage reports other bytes for.
fn checksum_problems(
    count: u32,
    declared: &BTreeMap<u32, Sha256Checksum>,
    stored: &[StoredPart],
) -> Vec<String> {
    let mut problems = Vec::new();
    for number in 1..=count {
        let held = stored.iter().find(|s| s.part_number == number);
        match (
            declared.get(&number),
            held.and_then(|s| s.checksum_sha256.as_ref()),
        ) {
            (None, _) => problems.push(format!(
                "part {number} was never signed with a checksum_sha256"
            )),
            (Some(declared), Some(held)) if declared != held => problems.push(format!(
                "part {number}: storage holds bytes whose SHA-256 is not the declared one"
            )),
            _ => {}
        }
    }
    problems
}

/// What is wrong with a client's list of parts (sorted by number), checked against the
/// upload's layout and what storage holds; empty when it can be assembled.
fn part_problems(
    upload: &MultipartUpload,
    total: u64,
    given: &[PartDto],
    stored: &[StoredPart],
) -> Vec<String> {
    let count = upload.part_count(total);
    let numbers: Vec<u32> = given.iter().map(|p| p.part_number).collect();
    let list = |items: Vec<u32>| {
        items
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut problems = Vec::new();
    let missing: Vec<u32> = (1..=count).filter(|n| !numbers.contains(n)).collect();
    if !missing.is_empty() {
        problems.push(format!("missing parts: {}", list(missing)));
    }
    let unexpected: Vec<u32> = numbers
        .iter()
        .copied()
        .filter(|n| *n == 0 || *n > count)
        .collect();
    if !unexpected.is_empty() {
        problems.push(format!(
            "no such parts: {} (the upload has {count})",
            list(unexpected)
        ));
    }
    if numbers.windows(2).any(|w| w[0] == w[1]) {
        problems.push("a part is listed twice".to_owned());
    }
    let unquoted = |etag: &str| etag.trim_matches('"').to_ascii_lowercase();
    for part in given
        .iter()
        .filter(|p| (1..=count).contains(&p.part_number))
    {
        match stored.iter().find(|s| s.part_number == part.part_number) {
            None => problems.push(format!("part {} is not in storage", part.part_number)),
            Some(s) if s.size != upload.part_len(part.part_number, total) => {
                problems.push(format!(
                    "part {} has {} bytes, not {}",
                    part.part_number,
                    s.size,
                    upload.part_len(part.part_number, total)
                ))
            }
            Some(s)
                if s.etag
                    .as_deref()
                    .is_some_and(|e| unquoted(e) != unquoted(&part.etag)) =>
            {
                problems.push(format!(
                    "part {}: the ETag is not the one storage holds",
                    part.part_number
                ));
            }
            Some(_) => {}
        }
    }
    problems
}

/// Checks that storage holds what the client declared (and, for parts declared with their
/// SHA-256, the composite checksum when storage reports one); returns the stored size.
async fn verify_upload(
    state: &AppState,
    asset: &Asset,
    composite: Option<&CompositeChecksum>,
) -> Result<u64, AppError> {
    let wants_checksum = asset.checksum_sha256.is_some();
    let stored = match state
        .storage
        .check_upload(&asset.storage_key, wants_checksum)
        .await?
    {
        UploadCheck::Stored(stored) => stored,
        UploadCheck::Missing => return Err(AppError::UploadNotFound),
        UploadCheck::Altered(how) => return Err(AppError::UploadMismatch(how)),
    };
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
    if let (Some(expected), Some(reported)) = (composite, &stored.composite_sha256)
        && &expected.sha256 != reported
    {
        return Err(AppError::UploadMismatch(format!(
            "storage reports the composite checksum {reported} for the parts, not {}",
            expected.sha256
        )));
    }
    Ok(stored.size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload() -> MultipartUpload {
        MultipartUpload {
            upload_id: "u".into(),
            part_size: 5,
            part_checksums: false,
        }
    }

    fn given(list: &[(u32, &str)]) -> Vec<PartDto> {
        list.iter()
            .map(|(n, e)| PartDto {
                part_number: *n,
                etag: (*e).to_owned(),
            })
            .collect()
    }

    fn stored(list: &[(u32, Option<&str>, u64)]) -> Vec<StoredPart> {
        list.iter()
            .map(|(n, e, size)| StoredPart {
                part_number: *n,
                etag: e.map(str::to_owned),
                size: *size,
                checksum_sha256: None,
            })
            .collect()
    }

    #[test]
    fn a_complete_list_matching_storage_has_no_problem() {
        let parts = given(&[(1, "\"a\""), (2, "\"b\""), (3, "\"c\"")]);
        let held = stored(&[(1, Some("\"a\""), 5), (2, Some("\"B\""), 5), (3, None, 2)]);
        assert!(part_problems(&upload(), 12, &parts, &held).is_empty());
    }

    #[test]
    fn each_kind_of_wrong_list_is_named() {
        let held = stored(&[(1, Some("\"a\""), 5), (2, Some("\"b\""), 4)]);
        type Case<'a> = (&'a [(u32, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (&[(1, "\"a\"")], "missing parts: 2, 3", "parts left out"),
            (
                &[(1, "\"a\""), (2, "\"b\""), (3, "c"), (4, "d")],
                "no such parts: 4",
                "a part beyond the count",
            ),
            (
                &[(1, "\"x\""), (2, "\"b\""), (3, "c")],
                "part 1: the ETag",
                "an ETag storage does not hold",
            ),
            (
                &[(1, "\"a\""), (2, "\"b\""), (3, "c")],
                "part 3 is not in storage",
                "a part never uploaded",
            ),
            (
                &[(1, "\"a\""), (2, "\"b\""), (3, "c")],
                "part 2 has 4 bytes, not 5",
                "a part of the wrong size",
            ),
            (
                &[(1, "\"a\""), (1, "\"a\""), (2, "\"b\""), (3, "c")],
                "listed twice",
                "a repeated part",
            ),
        ];
        for (list, says, why) in cases {
            let problems = part_problems(&upload(), 12, &given(list), &held).join("; ");
            assert!(problems.contains(says), "{why}: {problems:?}");
        }
    }

    #[test]
    fn parts_never_declared_or_held_with_other_bytes_are_named() {
        let checksum = |byte: u8| Sha256Checksum::from_digest(&[byte; 32]).unwrap();
        let declared = BTreeMap::from([(1, checksum(1)), (2, checksum(2))]);
        let mut held = stored(&[(1, None, 5), (2, None, 5), (3, None, 2)]);
        held[0].checksum_sha256 = Some(checksum(1));
        held[1].checksum_sha256 = Some(checksum(9));
        let problems = checksum_problems(3, &declared, &held).join("; ");
        assert!(!problems.contains("part 1"), "{problems}");
        assert!(
            problems.contains("part 2: storage holds bytes"),
            "{problems}"
        );
        assert!(problems.contains("part 3 was never signed"), "{problems}");
        held[1].checksum_sha256 = None;
        assert!(
            !checksum_problems(3, &declared, &held)
                .join("; ")
                .contains("part 2"),
            "a part storage reports no checksum for is left to the read-back"
        );
    }
}
