//! `PUT` and `GET /storage/{bucket}/{key}`: the object store of the local backend, reached
//! only through URLs the server signed (see `storage::local`).

use std::collections::HashMap;

use futures::TryStreamExt;
use salvo::http::StatusCode;
use salvo::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderValue};
use salvo::oapi::endpoint;
use salvo::prelude::Json;
use salvo::{Depot, Request, Response};

use crate::error::{AppError, ProblemDetails};
use crate::state::AppState;
use crate::storage::local::{LocalStorage, SignatureError, SignedMethod, UploadRejection};

/// Receive an upload to a signed `PUT` URL (local backend). Use the URL exactly as
/// `POST /api/upload` returned it, with the headers it named: the query carries the signature.
#[endpoint(
    tags("storage"),
    operation_id = "putObject",
    parameters(
        ("bucket" = String, Path, description = "`storage.bucket`"),
        ("**key" = String, Path, description = "The storage key, as in the signed URL"),
    ),
    responses(
        (status_code = 200, description = "Stored: `{size, checksum_sha256}`; `ETag` is the hex SHA-256"),
        (status_code = 400, description = "The body differs from what was signed (`content_length_mismatch`, `checksum_mismatch`, `body_unreadable`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "Missing, wrong or expired signature, or another content type (`signature_missing`, `signature_mismatch`, `url_expired`, `content_type_mismatch`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No such bucket (`not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 413, description = "Larger than signed (`upload_too_large`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "The object could not be stored (`storage_unavailable`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn put_object(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some((storage, key, query)) = target(req, depot, res) else {
        return;
    };
    let signed = match storage.verify(SignedMethod::Put, &key, &query) {
        Ok(signed) => signed,
        Err(e) => return signature_problem(e).render(res),
    };
    // Refuse an announced oversize body before reading any of it.
    let limit = signed.length.or(signed.max_size).unwrap_or(0);
    let announced = req.header::<u64>(CONTENT_LENGTH);
    if announced.is_some_and(|n| n > limit) {
        return rejection_problem(&UploadRejection::TooLarge { limit }).render(res);
    }
    let content_type = req.header::<String>(CONTENT_TYPE);
    let body = req
        .take_body()
        .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) });
    match storage
        .receive(&signed, content_type.as_deref(), Box::pin(body))
        .await
    {
        Ok(stored) => {
            let checksum = stored.checksum_sha256.map(|c| c.to_string());
            if let Some(etag) = checksum
                .as_deref()
                .and_then(|c| HeaderValue::from_str(&format!("\"{}\"", hex_of(c))).ok())
            {
                res.headers_mut().insert(ETAG, etag);
            }
            res.render(Json(
                serde_json::json!({ "size": stored.size, "checksum_sha256": checksum }),
            ));
        }
        Err(rejection) => {
            if let UploadRejection::Storage(e) = &rejection {
                tracing::error!(error = %crate::error::error_chain(e), "local upload failed");
            }
            rejection_problem(&rejection).render(res)
        }
    }
}

/// Download from a signed `GET` URL (local backend), as `GET /api/access` returned it.
#[endpoint(
    tags("storage"),
    operation_id = "getObject",
    parameters(
        ("bucket" = String, Path, description = "`storage.bucket`"),
        ("**key" = String, Path, description = "The storage key, as in the signed URL"),
    ),
    responses(
        (status_code = 200, description = "The object's bytes, with the content type it was uploaded with", content_type = "application/octet-stream"),
        (status_code = 403, description = "Missing, wrong or expired signature (`signature_missing`, `signature_mismatch`, `url_expired`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "Nothing stored under this key (`object_not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Storage unavailable (`storage_unavailable`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn get_object(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some((storage, key, query)) = target(req, depot, res) else {
        return;
    };
    let signed = match storage.verify(SignedMethod::Get, &key, &query) {
        Ok(signed) => signed,
        Err(e) => return signature_problem(e).render(res),
    };
    match storage.open_download(&key).await {
        Ok(Some(download)) => {
            let content_type = signed
                .content_type
                .as_deref()
                .unwrap_or("application/octet-stream");
            if let Ok(value) = HeaderValue::from_str(content_type) {
                res.headers_mut().insert(CONTENT_TYPE, value);
            }
            res.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(download.size));
            res.stream(download.body);
        }
        Ok(None) => ProblemDetails::new(
            StatusCode::NOT_FOUND,
            "object_not_found",
            "Object not found",
            "No object is stored under this key.",
        )
        .render(res),
        Err(e) => AppError::from(e).to_problem().render(res),
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
    let storage = AppState::from_depot(depot)
        .ok()
        .and_then(|s| s.local_storage.clone());
    let bucket = req.param::<String>("bucket");
    let key = req.param::<String>("key");
    match (storage, bucket, key) {
        (Some(storage), Some(bucket), Some(key)) if bucket == storage.bucket() => {
            let query = req
                .queries()
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            Some((storage, key, query))
        }
        _ => {
            AppError::RouteNotFound(req.uri().path().to_owned())
                .to_problem()
                .render(res);
            None
        }
    }
}

fn signature_problem(error: SignatureError) -> ProblemDetails {
    let code = match error {
        SignatureError::Malformed => "signature_missing",
        SignatureError::Mismatch => "signature_mismatch",
        SignatureError::Expired => "url_expired",
    };
    ProblemDetails::new(
        StatusCode::FORBIDDEN,
        code,
        "Request not authorised",
        error.to_string(),
    )
}

fn rejection_problem(rejection: &UploadRejection) -> ProblemDetails {
    let (status, code) = match rejection {
        UploadRejection::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "upload_too_large"),
        UploadRejection::LengthMismatch { .. } => {
            (StatusCode::BAD_REQUEST, "content_length_mismatch")
        }
        UploadRejection::ChecksumMismatch => (StatusCode::BAD_REQUEST, "checksum_mismatch"),
        UploadRejection::ContentTypeMismatch => (StatusCode::FORBIDDEN, "content_type_mismatch"),
        UploadRejection::BodyRead(_) => (StatusCode::BAD_REQUEST, "body_unreadable"),
        UploadRejection::Storage(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
    };
    let detail = match rejection {
        UploadRejection::Storage(_) => "The object could not be stored; retry later.".to_owned(),
        other => other.to_string(),
    };
    ProblemDetails::new(status, code, "Upload refused", detail)
}

/// The hex form of a base64 SHA-256, as S3-style ETags use hex digests.
fn hex_of(base64_digest: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(base64_digest)
        .map(hex::encode)
        .unwrap_or_default()
}
