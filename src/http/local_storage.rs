//! `PUT`, `GET` and `HEAD /storage/{bucket}/{key}` and `POST /storage/{bucket}`: the object
//! store of the local backend, reached only through requests the server signed (see
//! `storage::local`; downloads in `download`).
//! A `PUT` stores a whole object or, with `partNumber` and `uploadId`, one part of a multipart
//! upload; a `POST` is a form upload.

mod download;
mod form;
mod problems;

use std::collections::HashMap;
use std::time::Duration;

use futures::{Stream, TryStreamExt};
use salvo::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderValue};
use salvo::oapi::endpoint;
use salvo::prelude::Json;
use salvo::{Depot, Request, Response};

pub use download::{get_object, head_object};
pub use form::post_object;
use problems::rejected;

use super::min_rate::MinimumRate;
use crate::domain::{Asset, AssetStatus};
use crate::error::{AppError, ProblemDetails};
use crate::state::AppState;
use crate::storage::StoredObject;
use crate::storage::local::{LocalStorage, SignedMethod, SignedRequest, UploadRejection};

/// Receive an upload to a signed `PUT` URL (local backend): a whole object, or with
/// `partNumber` and `uploadId` one part of a multipart upload. Use the URL exactly as the API
/// returned it, with the headers it named: the query carries the signature.
#[endpoint(
    tags("storage"),
    operation_id = "putObject",
    parameters(
        ("bucket" = String, Path, description = "`storage.bucket`"),
        ("**key" = String, Path, description = "The storage key, as in the signed URL"),
    ),
    responses(
        (status_code = 200, description = "Stored: `{size, checksum_sha256}` (a part: `{part_number, size, etag}`); `ETag` is the quoted hex SHA-256. With `uploads.complete_on_upload`, a whole object's asset is completed by this request too, and the body adds `asset_id` and `uploaded_status: \"complete\"`"),
        (status_code = 400, description = "The body differs from what was signed (`content_length_mismatch`, `checksum_mismatch`, `body_unreadable`), or the part number is not 1-10000 (`validation_failed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "Missing, wrong or expired signature, or another content type (`signature_missing`, `signature_mismatch`, `url_expired`, `content_type_mismatch`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 408, description = "The body arrived slower than `storage.local.min_upload_rate` (`upload_too_slow`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No such bucket (`not_found`), or the multipart upload was completed or aborted (`no_such_upload`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "The asset is complete: its object cannot be replaced (`upload_already_complete`); with `uploads.complete_on_upload`, stored but refused by completion (`upload_mismatch`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 413, description = "Larger than signed (`upload_too_large`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "The object could not be stored (`storage_unavailable`); with `uploads.complete_on_upload`, stored but not completed because the database could not answer (`database_unavailable`): complete it with `PUT /api/status`", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn put_object(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some((storage, key, query)) = target(req, depot, res) else {
        return;
    };
    let signed = match storage.verify(SignedMethod::Put, &key, &query) {
        Ok(signed) => signed,
        Err(e) => return AppError::from(e).to_problem().render(res),
    };
    // Refuse an announced oversize body before reading any of it.
    let limit = crate::storage::local::body_limit(&signed);
    if req.header::<u64>(CONTENT_LENGTH).is_some_and(|n| n > limit) {
        return rejected(UploadRejection::TooLarge { limit }, res);
    }
    let content_type = req.header::<String>(CONTENT_TYPE);
    let body = body_of(req, depot);
    if signed.part.is_some() {
        return put_part(&storage, &signed, body, res).await;
    }
    match storage
        .receive(&signed, content_type.as_deref(), body)
        .await
    {
        Ok(stored) => {
            set_etag(res, &stored);
            let completed = match complete_on_upload(depot, &storage, &key).await {
                Ok(completed) => completed,
                Err(error) => return error.to_problem().render(res),
            };
            let mut body = serde_json::json!({
                "size": stored.size,
                "checksum_sha256": stored.checksum_sha256.map(|c| c.to_string()),
            });
            if let Some(asset) = completed {
                body["asset_id"] = asset.id.to_string().into();
                body["uploaded_status"] = asset.status.to_string().into();
            }
            res.render(Json(body));
        }
        Err(rejection) => rejected(rejection, res),
    }
}

/// With `uploads.complete_on_upload`, completes the pending asset stored under `key` right
/// after its bytes were stored, exactly as `PUT /api/status` would (and so with its
/// `asset.completed` event); returns the asset, `None` when the setting is off or no
/// single-request upload has the key. A refusal or an outage is the request's answer: the
/// bytes are stored, and `PUT /api/status` completes them later.
async fn complete_on_upload(
    depot: &Depot,
    storage: &LocalStorage,
    key: &str,
) -> Result<Option<Asset>, AppError> {
    let state = AppState::from_depot(depot)?;
    if !state.settings.uploads.complete_on_upload {
        return Ok(None);
    }
    let Some(asset) = state
        .assets
        .find_stored_under(storage.bucket(), key)
        .await?
    else {
        return Ok(None);
    };
    if asset.status == AssetStatus::Complete || asset.multipart.is_some() {
        return Ok(None);
    }
    super::status::complete_asset(state, &asset, Vec::new())
        .await
        .map(Some)
}

/// Stores one part of a multipart upload and answers its `ETag`, which completion needs.
async fn put_part<S>(storage: &LocalStorage, signed: &SignedRequest, body: S, res: &mut Response)
where
    S: Stream<Item = std::io::Result<bytes::Bytes>> + Unpin,
{
    match storage.receive_part(signed, body).await {
        Ok(part) => {
            if let Some(etag) = part
                .etag
                .as_deref()
                .and_then(|e| HeaderValue::from_str(e).ok())
            {
                res.headers_mut().insert(ETAG, etag);
            }
            res.render(Json(part));
        }
        Err(rejection) => rejected(rejection, res),
    }
}

/// The local storage, object key and query of a storage request, or a rendered 404.
fn target(
    req: &Request,
    depot: &Depot,
    res: &mut Response,
) -> Option<(
    std::sync::Arc<LocalStorage>,
    String,
    HashMap<String, String>,
)> {
    let storage = bucket_storage(req, depot, res)?;
    let Some(key) = req.param::<String>("key") else {
        not_found(req, res);
        return None;
    };
    let query = req
        .queries()
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    Some((storage, key, query))
}

/// The local storage when the request's `bucket` is the one it serves, or a rendered 404.
fn bucket_storage(
    req: &Request,
    depot: &Depot,
    res: &mut Response,
) -> Option<std::sync::Arc<LocalStorage>> {
    let storage = AppState::from_depot(depot)
        .ok()
        .and_then(|s| s.local_storage.clone());
    match (storage, req.param::<String>("bucket")) {
        (Some(storage), Some(bucket)) if bucket == storage.bucket() => Some(storage),
        _ => {
            not_found(req, res);
            None
        }
    }
}

fn not_found(req: &Request, res: &mut Response) {
    AppError::RouteNotFound(req.uri().path().to_owned())
        .to_problem()
        .render(res);
}

/// The request body as a stream of bytes, cut off when it arrives slower than
/// `storage.local.min_upload_rate`.
fn body_of(
    req: &mut Request,
    depot: &Depot,
) -> std::pin::Pin<Box<dyn Stream<Item = std::io::Result<bytes::Bytes>> + Send>> {
    let body = req
        .take_body()
        .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) });
    let local = AppState::from_depot(depot).map(|state| &state.settings.storage.local);
    match local {
        Ok(local) if local.min_upload_rate > 0 => Box::pin(MinimumRate::new(
            Box::pin(body),
            local.min_upload_rate,
            Duration::from_secs(local.upload_rate_window_secs),
        )),
        _ => Box::pin(body),
    }
}

/// `ETag`: the quoted hex SHA-256 of what was stored, as S3-style ETags use hex digests.
fn set_etag(res: &mut Response, stored: &StoredObject) {
    use base64::Engine;
    let hex = stored
        .checksum_sha256
        .as_ref()
        .and_then(|c| {
            base64::engine::general_purpose::STANDARD
                .decode(c.as_str())
                .ok()
        })
        .map(hex::encode);
    if let Some(etag) = hex.and_then(|h| HeaderValue::from_str(&format!("\"{h}\"")).ok()) {
        res.headers_mut().insert(ETAG, etag);
    }
}
