//! `POST /storage/{bucket}`: form uploads to the local backend, as browsers post S3 POST
//! policies.

use salvo::http::StatusCode;
use salvo::http::header::CONTENT_TYPE;
use salvo::oapi::endpoint;
use salvo::prelude::Json;
use salvo::{Depot, Request, Response};

use super::problems::rejected;
use super::{body_of, bucket_storage, complete_on_upload, set_etag};
use crate::error::ProblemDetails;

/// Receive a form upload (local backend): a `multipart/form-data` `POST` to the URL
/// `POST /api/upload` returned, with every entry of its `fields` as a form field, then the
/// file in a field named `file`, last.
#[endpoint(
    tags("storage"),
    operation_id = "postObject",
    parameters(("bucket" = String, Path, description = "`storage.bucket`")),
    responses(
        (status_code = 204, description = "Stored; `ETag` is the quoted hex SHA-256"),
        (status_code = 200, description = "With `uploads.complete_on_upload`: stored and the asset completed, `{asset_id, uploaded_status: \"complete\"}`"),
        (status_code = 400, description = "Not the form that was issued: an unknown or repeated field, a field after `file`, no `file` (`malformed_form`); or other bytes than declared (`checksum_mismatch`, `body_unreadable`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "Missing, wrong or expired signature fields, or another content type (`signature_missing`, `signature_mismatch`, `url_expired`, `content_type_mismatch`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No such bucket (`not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "The asset is complete: its object cannot be replaced (`upload_already_complete`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 408, description = "The body arrived slower than `storage.local.min_upload_rate` (`upload_too_slow`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 413, description = "The file is larger than signed (`upload_too_large`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "The object could not be stored (`storage_unavailable`), or (with `uploads.complete_on_upload`) stored but not completed (`database_unavailable`): complete it with `PUT /api/status`", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn post_object(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(storage) = bucket_storage(req, depot, res) else {
        return;
    };
    let content_type = req.header::<String>(CONTENT_TYPE);
    match storage
        .receive_form(content_type.as_deref(), body_of(req, depot))
        .await
    {
        Ok((key, stored)) => {
            set_etag(res, &stored);
            match complete_on_upload(depot, &storage, &key).await {
                Ok(Some(asset)) => res.render(Json(serde_json::json!({
                    "asset_id": asset.id.to_string(),
                    "uploaded_status": asset.status.to_string(),
                }))),
                // S3's answer to a form without `success_action_status`.
                Ok(None) => {
                    res.status_code(StatusCode::NO_CONTENT);
                }
                Err(error) => error.to_problem().render(res),
            }
        }
        Err(rejection) => rejected(rejection, res),
    }
}
