//! Single-request uploads: `GET /s3/params` answers the signed POST form Uppy sends the file
//! with, and `POST /s3/complete?key=` completes the asset once the file is there.

use std::collections::BTreeMap;
use std::time::Duration;

use salvo::oapi::{ToSchema, endpoint};
use salvo::prelude::Json;
use salvo::{Depot, Request};
use serde::Serialize;

use super::issue::{Announced, issue};
use crate::domain::AssetStatus;
use crate::error::{AppError, ProblemDetails, UppyError};
use crate::http::Caller;
use crate::storage::{SignedUpload, UploadSpec};

/// A signed `multipart/form-data` POST (`fields`, then the file last), or a signed `PUT` of
/// the whole file with `headers`.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = UppyUploadParameters))]
struct UploadParameters {
    /// `POST`, or `PUT` on `/uppy/s3/params` when `metadata[size]` is given.
    method: &'static str,
    url: String,
    /// Form fields to send before the file; `key` is the upload's key. Empty for a `PUT`.
    fields: BTreeMap<String, String>,
    /// Headers a `PUT` must carry (those a browser sets itself left out).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
}

/// The asset a single-request upload completed.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = UppyCompletedUpload))]
struct CompletedUpload {
    key: String,
    #[salvo(schema(format = "uuid"))]
    asset_id: String,
    status: AssetStatus,
}

/// Sign a POST form for one file (Uppy's `getUploadParameters`).
///
/// Records a pending asset named `metadata[object_key]`, else `filename` (under the token's
/// prefix). `type` is bound; `metadata[size]`, when sent, is the exact size. The same route
/// is served at `/uppy/s3/params` for callers sending `Authorization` or `X-Api-Key`.
#[endpoint(
    operation_id = "uppyUploadParameters",
    tags("uppy"),
    parameters(
        ("token" = String, Path, description = "A delegated upload token"),
        ("filename" = String, Query, description = "The file's name"),
        ("type" = Option<String>, Query, description = "The file's media type"),
    ),
    responses(
        (status_code = 200, description = "The form to POST the file with", body = UploadParameters),
        (status_code = 400, description = "A parameter is invalid (`validation_failed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "Outside the token's scope (`token_scope`) or over a quota (`quota_exceeded`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "An asset with this name is complete (`upload_already_complete`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 413, description = "`metadata[size]` exceeds `uploads.max_size` (`upload_too_large`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 415, description = "`type` is not allowed (`content_type_not_allowed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database, storage or the rate limiter unavailable (`rate_limit_unavailable` with `rate_limit.redis.on_error = \"deny\"`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn upload_parameters(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<UploadParameters>, UppyError> {
    Ok(Json(sign_form(req, depot).await?))
}

async fn sign_form(req: &Request, depot: &Depot) -> Result<UploadParameters, AppError> {
    let caller = Caller::of(depot)?;
    let state = &caller.state;
    let file = Announced {
        filename: req.query::<String>("filename").unwrap_or_default(),
        content_type: req.query::<String>("type").unwrap_or_default(),
        metadata: super::query_metadata(req),
    };
    let issued = issue(&caller, file).await?;
    let asset = &issued.asset;
    if let (Some(previous), Some(storage)) = (&asset.multipart, state.storage.multipart()) {
        // Re-issued as a single request: the earlier parts are useless.
        super::super::parts::abort_quietly(storage, asset, previous).await;
        state
            .assets
            .set_multipart(&asset.owner, asset.id, None)
            .await?;
    }
    // Uppy 5 (the header-authenticated mount) sends a PUT of a known size with the signed
    // headers; Uppy 6 can only POST a form. A form cannot bind an exact length: the range
    // stops at the declared size, and completion checks it exactly.
    let put = req.param::<String>("token").is_none() && asset.content_length.is_some();
    let signed = state
        .storage
        .presign_upload(&UploadSpec {
            storage_key: &asset.storage_key,
            content_type: asset.content_type.as_ref(),
            content_length: asset.content_length.filter(|_| put),
            checksum_sha256: None,
            max_size: issued.max_size,
            expires_in: Duration::from_secs(state.settings.uploads.default_expires_in),
        })
        .await?;
    tracing::info!(asset_id = %asset.id, "issued Uppy upload parameters");
    Ok(match signed {
        SignedUpload::Post { url, fields } => UploadParameters {
            method: "POST",
            url,
            fields,
            headers: BTreeMap::new(),
        },
        SignedUpload::Put { url, mut headers } => {
            headers.retain(|name, _| !name.eq_ignore_ascii_case("content-length"));
            headers.retain(|name, _| !name.eq_ignore_ascii_case("host"));
            let key = asset.storage_key.clone();
            UploadParameters {
                method: "PUT",
                url,
                fields: BTreeMap::from([("key".to_owned(), key)]),
                headers,
            }
        }
    })
}

/// Complete a single-request upload by the `key` Uppy reports.
///
/// Verifies the stored file as `PUT /api/status` does. Also served at `/uppy/s3/complete`.
#[endpoint(
    operation_id = "uppyCompleteUpload",
    tags("uppy"),
    parameters(
        ("token" = String, Path, description = "A delegated upload token"),
        ("key" = String, Query, description = "The key of the upload (`fields.key`)"),
    ),
    responses(
        (status_code = 200, description = "The asset is complete", body = CompletedUpload),
        (status_code = 400, description = "No `key`, an empty one, or one with control characters (`validation_failed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "The token did not create this upload (`token_scope`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No upload of the caller has this key (`asset_not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "Nothing stored yet (`upload_not_found`) or not what was declared (`upload_mismatch`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database, storage or the rate limiter unavailable (`rate_limit_unavailable` with `rate_limit.redis.on_error = \"deny\"`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn complete_upload(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<CompletedUpload>, UppyError> {
    let caller = Caller::of(depot)?;
    let state = &caller.state;
    let asset = super::asset_for_key(&caller, req).await?;
    let asset = super::complete(state, asset, Vec::new()).await?;
    Ok(Json(CompletedUpload {
        key: asset.storage_key,
        asset_id: asset.id.to_string(),
        status: asset.status,
    }))
}
