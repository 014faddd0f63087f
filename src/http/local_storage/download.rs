//! `GET` and `HEAD /storage/{bucket}/{key}`: downloads from the local backend, behind the
//! signed-URL check. salvo's `NamedFile` serves the file (read in large chunks by a blocking
//! thread) with what S3 gives browsers and video players: one byte range (`206`; several
//! ranges get the whole object, as RFC 9110 allows), `ETag` with `If-None-Match`,
//! `Last-Modified` with `If-Modified-Since` (`304`), `If-Match`/`If-Unmodified-Since`/
//! `If-Range`, and `HEAD`. A `HEAD` needs the URL of a `GET`, as both describe the same bytes.

use salvo::fs::NamedFile;
use salvo::http::StatusCode;
use salvo::http::header::{CONTENT_TYPE, HeaderValue};
use salvo::oapi::endpoint;
use salvo::{Depot, Request, Response};

use super::target;
use crate::error::{AppError, DownloadRefusal, ProblemDetails};
use crate::storage::StorageError;
use crate::storage::local::SignedMethod;

/// Bytes read from disk per chunk of the body: enough that a blocking-thread hand-off per
/// chunk costs nothing next to the copy, few enough to keep per-download memory small.
const CHUNK: u64 = 4 * 1024 * 1024;

/// Download from a signed `GET` URL (local backend), as `GET /api/access` returned it.
#[endpoint(
    tags("storage"),
    operation_id = "getObject",
    parameters(
        ("bucket" = String, Path, description = "`storage.bucket`"),
        ("**key" = String, Path, description = "The storage key, as in the signed URL"),
    ),
    responses(
        (status_code = 200, description = "The object's bytes, with the content type it was uploaded with, `ETag`, `Last-Modified` and `Accept-Ranges: bytes`", content_type = "application/octet-stream"),
        (status_code = 206, description = "The one byte range `Range` asked for, with `Content-Range`", content_type = "application/octet-stream"),
        (status_code = 304, description = "`If-None-Match` or `If-Modified-Since` says the client's copy is current"),
        (status_code = 400, description = "The `Range` header is not text (`malformed_range`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "Missing, wrong or expired signature (`signature_missing`, `signature_mismatch`, `url_expired`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "Nothing stored under this key (`object_not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 412, description = "`If-Match` or `If-Unmodified-Since` does not hold (`precondition_failed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 416, description = "The range lies beyond the object (`range_not_satisfiable`); `Content-Range: bytes */<size>`", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Storage unavailable (`storage_unavailable`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn get_object(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    serve(req, depot, res).await;
}

/// The headers a `GET` of the same signed URL would answer, without the body.
#[endpoint(
    tags("storage"),
    operation_id = "headObject",
    parameters(
        ("bucket" = String, Path, description = "`storage.bucket`"),
        ("**key" = String, Path, description = "The storage key, as in the signed `GET` URL"),
    ),
    responses(
        (status_code = 200, description = "`Content-Length`, `Content-Type`, `ETag`, `Last-Modified`, `Accept-Ranges`; no body"),
        (status_code = 304, description = "`If-None-Match` or `If-Modified-Since` says the client's copy is current"),
        (status_code = 403, description = "Missing, wrong or expired signature"),
        (status_code = 404, description = "Nothing stored under this key"),
    )
)]
pub async fn head_object(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    serve(req, depot, res).await;
}

async fn serve(req: &mut Request, depot: &Depot, res: &mut Response) {
    let Some((storage, key, query)) = target(req, depot, res) else {
        return;
    };
    let signed = match storage.verify(SignedMethod::Get, &key, &query) {
        Ok(signed) => signed,
        Err(e) => return AppError::from(e).to_problem().render(res),
    };
    let (file, size) = match open(storage.object_file(&key)).await {
        Ok(Some(found)) => found,
        Ok(None) => return AppError::ObjectNotFound.to_problem().render(res),
        Err(e) => return AppError::from(e).to_problem().render(res),
    };
    // The type bound into the URL, exactly as it was signed; NamedFile keeps a type set here.
    let content_type = signed
        .content_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    if let Ok(value) = HeaderValue::from_str(content_type) {
        res.headers_mut().insert(CONTENT_TYPE, value);
    }
    file.send_with_method(req.method(), req.headers(), res)
        .await;
    let refusal = match res.status_code {
        Some(StatusCode::RANGE_NOT_SATISFIABLE) => DownloadRefusal::RangeNotSatisfiable { size },
        Some(StatusCode::PRECONDITION_FAILED) => DownloadRefusal::PreconditionFailed,
        Some(StatusCode::BAD_REQUEST) => DownloadRefusal::MalformedRange,
        _ => return,
    };
    // `HEAD` answers carry no body, problem or not.
    if req.method() != salvo::http::Method::HEAD {
        AppError::from(refusal).to_problem().render(res);
    }
}

/// The file of an object ready to serve and its size, or `None` when nothing (or a
/// directory of other keys) is stored there.
async fn open(
    path: Result<std::path::PathBuf, StorageError>,
) -> Result<Option<(NamedFile, u64)>, StorageError> {
    let path = path?;
    let unavailable = |e: std::io::Error| {
        StorageError::Unavailable(anyhow::anyhow!(e).context("opening the object"))
    };
    let size = match tokio::fs::metadata(&path).await {
        Ok(metadata) if metadata.is_file() => metadata.len(),
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unavailable(e)),
    };
    let mut builder = NamedFile::builder(path)
        // Said here so NamedFile does not sniff the file; the header set above wins.
        .content_type(mime::APPLICATION_OCTET_STREAM)
        .buffer_size(CHUNK);
    // The route never named a download file; `GET /api/access` decides how it is shown.
    builder.disable_content_disposition();
    match builder.build().await {
        Ok(file) => Ok(Some((file, size))),
        Err(salvo::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(salvo::Error::Io(e)) => Err(unavailable(e)),
        Err(e) => Err(StorageError::Other(
            anyhow::anyhow!(e.to_string()).context("opening the object"),
        )),
    }
}
