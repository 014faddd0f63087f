//! The one error type of the HTTP boundary, rendered once as RFC 9457 problem details
//! (`application/problem+json`) with a stable machine-readable `code`.
//!
//! Server-side failures (5xx) are logged with their whole cause chain and answered with an
//! opaque message, so no internal detail (or secret) reaches a client.

use salvo::http::StatusCode;
use salvo::http::header::{CONTENT_TYPE, HeaderValue};
use salvo::oapi::{Components, EndpointOutRegister, Operation, ToSchema};
use salvo::{Depot, Request, Response, Writer, async_trait};
use serde::Serialize;

mod storage_routes;

pub use storage_routes::DownloadRefusal;

use crate::db::DbError;
use crate::domain::{AssetId, ValidationError};
use crate::storage::StorageError;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Validation(#[from] ValidationError),
    #[error("the request body is not valid JSON: {0}")]
    MalformedBody(String),
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// A request head HTTP cannot parse (refused by hyper before any handler).
    #[error("the request is not valid HTTP/1.1 (its request line or a header is malformed)")]
    MalformedRequest,
    /// A request target over hyper's 64 KiB.
    #[error("the request target is too long")]
    UriTooLong,
    #[error("the request's header block exceeds {limit} bytes")]
    HeadersTooLarge { limit: usize },
    #[error("the request body exceeds {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("the request body did not arrive within {} s", timeout.as_secs())]
    BodyTimeout { timeout: std::time::Duration },
    /// The caller's rate-limit bucket is empty for `retry_after` more seconds.
    #[error("Rate limit of {limit} requests exceeded; retry in {retry_after} s.")]
    RateLimited { limit: u32, retry_after: u64 },
    /// The shared rate-limit buckets cannot be read and `rate_limit.redis.on_error` is `deny`.
    #[error("The rate limiter cannot be reached; retry in a second.")]
    RateLimitUnavailable,
    /// A readiness check failed; `checks` says each dependency's state.
    #[error("unavailable: {}", failed_checks(checks))]
    NotReady {
        checks: std::collections::BTreeMap<String, String>,
    },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("content_length {declared} exceeds the maximum upload size of {max_size} bytes")]
    UploadTooLarge { declared: u64, max_size: u64 },
    #[error("Asset with id {0} not found")]
    AssetNotFound(AssetId),
    #[error("Upload already complete, try another object_key.")]
    UploadAlreadyComplete,
    #[error("No object has been uploaded for this asset yet.")]
    UploadNotFound,
    #[error("The stored object does not match the upload: {0}")]
    UploadMismatch(String),
    #[error("Asset upload is not yet completed.")]
    AssetNotComplete,
    #[error("The asset is complete; completion cannot be undone.")]
    CompletionIrreversible,
    #[error("No route matches {0}")]
    RouteNotFound(String),
    #[error("Authentication failed: {0}.")]
    Unauthorized(crate::auth::AuthError),
    #[error("The media type {0} is not allowed for uploads.")]
    ContentTypeNotAllowed(String),
    #[error("{0}")]
    QuotaExceeded(crate::db::QuotaExceeded),
    #[error("This storage backend does not offer multipart uploads; send the file with one PUT.")]
    MultipartNotSupported,
    #[error("This asset is not being uploaded in parts.")]
    NotMultipart,
    #[error("database unavailable")]
    DatabaseUnavailable(#[source] DbError),
    #[error("storage unavailable")]
    StorageUnavailable(#[source] StorageError),
    /// The store is not the one the database records (see `storage::identity`); the log
    /// says which and why, the client only that an operator must act.
    #[error(
        "The server is attached to another object store than the one its database records; an operator must fix the storage configuration."
    )]
    StorageMismatch,
    /// A delegated upload token's holder tried what its scope does not allow.
    #[error("{0}")]
    TokenScope(#[from] crate::domain::OutOfScope),
    #[error(
        "Upload tokens are disabled on this server: set upload_tokens.signing_key to enable them."
    )]
    UploadTokensDisabled,
    /// No asset of the caller has this storage key (the `key` Uppy reports).
    #[error("No upload of yours has this key.")]
    NoAssetForKey,
    /// A `/storage/…` request whose signature is missing, altered or expired.
    #[error(transparent)]
    Signature(#[from] crate::storage::local::SignatureError),
    /// An upload to a `/storage/…` route that was refused.
    #[error(transparent)]
    UploadRefused(#[from] crate::storage::local::UploadRejection),
    #[error("No object is stored under this key.")]
    ObjectNotFound,
    /// A download from a `/storage/…` route answered without the object's bytes.
    #[error(transparent)]
    DownloadRefused(#[from] DownloadRefusal),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error response (RFC 9457 problem details plus `code`).
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
#[salvo(schema(name = ProblemDetails, example = json!({
    "type": "urn:cloud-asset-uploader:problem:asset_not_complete",
    "title": "Asset not complete",
    "status": 409,
    "detail": "Asset upload is not yet completed.",
    "code": "asset_not_complete"
})))]
pub struct ProblemDetails {
    /// URI identifying the kind of problem: `urn:cloud-asset-uploader:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// Stable machine-readable error code.
    pub code: String,
    /// The offending request field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Each dependency and its state, for readiness failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<std::collections::BTreeMap<String, String>>,
    /// The quota that was exceeded, with its limit and the current use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaUse>,
    /// Seconds to wait before retrying, for rate-limited requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The `detail` again, for the Uppy routes: Uppy shows a failed request's `message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A quota's limit and the owner's use of it.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
#[salvo(schema(name = QuotaUse))]
pub struct QuotaUse {
    /// `max_pending_uploads` or `max_total_bytes`.
    pub limit: String,
    /// The configured limit.
    pub allowed: u64,
    /// The owner's use before this request.
    pub current: u64,
    /// What this request would add.
    pub requested: u64,
}

impl ProblemDetails {
    /// The answer to an error status no variant covers (salvo's own, e.g. a 400 from a
    /// malformed request line): `http_<status>`, titled with the status's reason phrase.
    pub fn for_status(status: StatusCode) -> Self {
        let reason = status.canonical_reason().unwrap_or("Error");
        Self::new(status, &format!("http_{}", status.as_u16()), reason, reason)
    }

    fn new(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:cloud-asset-uploader:problem:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            field: None,
            checks: None,
            quota: None,
            retry_after: None,
            message: None,
        }
    }

    /// This problem with `message` set to its `detail`, as Uppy shows it to the user.
    pub fn with_message(mut self) -> Self {
        self.message = Some(self.detail.clone());
        self
    }

    /// Writes this problem as the response.
    pub fn render(&self, res: &mut Response) {
        res.status_code(
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        );
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        let body = serde_json::to_vec(self).expect("problem details always serialize");
        res.body(body);
    }
}

impl AppError {
    /// Status, stable code and title of this error.
    pub fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Self::Validation(_) => (S::BAD_REQUEST, "validation_failed", "Invalid request"),
            Self::MalformedBody(_) => (S::BAD_REQUEST, "malformed_body", "Malformed request body"),
            Self::MalformedRequest => (S::BAD_REQUEST, "malformed_request", "Malformed request"),
            Self::UriTooLong => (S::URI_TOO_LONG, "uri_too_long", "Request target too long"),
            Self::HeadersTooLarge { .. } => (
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request_headers_too_large",
                "Request headers too large",
            ),
            Self::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            Self::BodyTooLarge { .. } => (
                S::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "Request body too large",
            ),
            Self::UploadTooLarge { .. } => {
                (S::PAYLOAD_TOO_LARGE, "upload_too_large", "Upload too large")
            }
            Self::AssetNotFound(_) => (S::NOT_FOUND, "asset_not_found", "Asset not found"),
            Self::UploadAlreadyComplete => (
                S::CONFLICT,
                "upload_already_complete",
                "Upload already complete",
            ),
            Self::UploadNotFound => (
                S::CONFLICT,
                "upload_not_found",
                "Upload not found in storage",
            ),
            Self::UploadMismatch(_) => (S::CONFLICT, "upload_mismatch", "Upload does not match"),
            Self::AssetNotComplete => (S::CONFLICT, "asset_not_complete", "Asset not complete"),
            Self::CompletionIrreversible => (
                S::CONFLICT,
                "completion_irreversible",
                "Completion is one-way",
            ),
            Self::RouteNotFound(_) => (S::NOT_FOUND, "not_found", "Not found"),
            Self::Unauthorized(_) => (S::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Self::ContentTypeNotAllowed(_) => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "content_type_not_allowed",
                "Content type not allowed",
            ),
            Self::QuotaExceeded(_) => (S::FORBIDDEN, "quota_exceeded", "Quota exceeded"),
            Self::MultipartNotSupported => (
                S::BAD_REQUEST,
                "multipart_not_supported",
                "Multipart uploads not supported",
            ),
            Self::NotMultipart => (S::CONFLICT, "not_multipart", "Not a multipart upload"),
            Self::DatabaseUnavailable(_) => (
                S::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "Service unavailable",
            ),
            Self::StorageUnavailable(_) => (
                S::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "Service unavailable",
            ),
            Self::StorageMismatch => (
                S::SERVICE_UNAVAILABLE,
                "storage_mismatch",
                "Wrong object store",
            ),
            Self::TokenScope(_) => (S::FORBIDDEN, "token_scope", "Outside the token's scope"),
            Self::UploadTokensDisabled => (
                S::FORBIDDEN,
                "upload_tokens_disabled",
                "Upload tokens disabled",
            ),
            Self::BodyTimeout { .. } => (S::REQUEST_TIMEOUT, "request_timeout", "Request timeout"),
            Self::RateLimited { .. } => (S::TOO_MANY_REQUESTS, "rate_limited", "Too many requests"),
            Self::RateLimitUnavailable => (
                S::SERVICE_UNAVAILABLE,
                "rate_limit_unavailable",
                "Rate limiter unavailable",
            ),
            Self::NotReady { .. } => (S::SERVICE_UNAVAILABLE, "not_ready", "Not ready"),
            Self::MethodNotAllowed { .. } => (
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            Self::NoAssetForKey => (S::NOT_FOUND, "asset_not_found", "Asset not found"),
            Self::Signature(error) => storage_routes::signature(error),
            Self::UploadRefused(rejection) => storage_routes::rejection(rejection),
            Self::ObjectNotFound => (S::NOT_FOUND, "object_not_found", "Object not found"),
            Self::DownloadRefused(refusal) => storage_routes::download(refusal),
            Self::Internal(_) => (
                S::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Internal server error",
            ),
        }
    }

    /// The problem details a client sees.
    pub fn to_problem(&self) -> ProblemDetails {
        let (status, code, title) = self.classify();
        let detail = match self {
            Self::DatabaseUnavailable(_) | Self::StorageUnavailable(_) => {
                "A dependency of the service is unavailable; retry later.".to_owned()
            }
            Self::Internal(_) => "The server failed to handle the request.".to_owned(),
            Self::UploadRefused(crate::storage::local::UploadRejection::Storage(_)) => {
                "The object could not be stored; retry later.".to_owned()
            }
            other => other.to_string(),
        };
        let mut problem = ProblemDetails::new(status, code, title, detail);
        if let Self::Validation(e) = self {
            problem.field = Some(e.field.clone());
        }
        if let Self::UploadRefused(crate::storage::local::UploadRejection::InvalidPartNumber(_)) =
            self
        {
            problem.field = Some("partNumber".to_owned());
        }
        if let Self::RateLimited { retry_after, .. } = self {
            problem.retry_after = Some(*retry_after);
        }
        if let Self::RateLimitUnavailable = self {
            problem.retry_after = Some(1);
        }
        if let Self::NotReady { checks } = self {
            problem.checks = Some(checks.clone());
        }
        if let Self::QuotaExceeded(quota) = self {
            problem.quota = Some(QuotaUse {
                limit: quota.limit.to_owned(),
                allowed: quota.allowed,
                current: quota.current,
                requested: quota.requested,
            });
        }
        problem
    }
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable | DbError::Connect(_) => Self::DatabaseUnavailable(error),
            DbError::Query(ref e) if e.is_closed() || e.as_db_error().is_none() => {
                Self::DatabaseUnavailable(error)
            }
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<StorageError> for AppError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable(_) => Self::StorageUnavailable(error),
            StorageError::Other(e) => Self::Internal(e.context("storage")),
        }
    }
}

#[async_trait]
impl Writer for AppError {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        let problem = self.to_problem();
        if problem.status >= 500 {
            // `{:#}`-style chain: every cause, no query strings or credentials (none are in errors).
            tracing::error!(code = %problem.code, error = %error_chain(&self), "request failed");
        }
        problem.render(res);
    }
}

/// Each endpoint documents its own error responses; this only makes `Result<_, AppError>`
/// acceptable as an endpoint's return type.
impl EndpointOutRegister for AppError {
    fn register(_components: &mut Components, _operation: &mut Operation) {}
}

/// An [`AppError`] of the Uppy routes: the same problem details, plus the `message` Uppy
/// shows to the user.
#[derive(Debug)]
pub struct UppyError(pub AppError);

impl From<AppError> for UppyError {
    fn from(error: AppError) -> Self {
        Self(error)
    }
}

#[async_trait]
impl Writer for UppyError {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        let problem = self.0.to_problem().with_message();
        if problem.status >= 500 {
            tracing::error!(code = %problem.code, error = %error_chain(&self.0), "request failed");
        }
        problem.render(res);
    }
}

impl EndpointOutRegister for UppyError {
    fn register(_components: &mut Components, _operation: &mut Operation) {}
}

/// The names of the checks that are not `ok`.
fn failed_checks(checks: &std::collections::BTreeMap<String, String>) -> String {
    checks
        .iter()
        .filter(|(_, state)| *state != "ok")
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `error: cause: cause…` on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_status_and_code() {
        let id = AssetId::generate();
        let cases: Vec<(AppError, u16, &str)> = vec![
            (
                ValidationError::new("object_key", "must not be empty").into(),
                400,
                "validation_failed",
            ),
            (AppError::MalformedBody("eof".into()), 400, "malformed_body"),
            (AppError::MalformedRequest, 400, "malformed_request"),
            (AppError::UriTooLong, 414, "uri_too_long"),
            (
                AppError::HeadersTooLarge { limit: 32768 },
                431,
                "request_headers_too_large",
            ),
            (
                AppError::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (
                AppError::BodyTooLarge { limit: 65536 },
                413,
                "body_too_large",
            ),
            (
                AppError::UploadTooLarge {
                    declared: 2,
                    max_size: 1,
                },
                413,
                "upload_too_large",
            ),
            (AppError::AssetNotFound(id), 404, "asset_not_found"),
            (
                AppError::UploadAlreadyComplete,
                409,
                "upload_already_complete",
            ),
            (AppError::UploadNotFound, 409, "upload_not_found"),
            (
                AppError::UploadMismatch("size".into()),
                409,
                "upload_mismatch",
            ),
            (AppError::AssetNotComplete, 409, "asset_not_complete"),
            (
                AppError::CompletionIrreversible,
                409,
                "completion_irreversible",
            ),
            (
                AppError::DatabaseUnavailable(DbError::Unavailable),
                503,
                "database_unavailable",
            ),
            (AppError::StorageMismatch, 503, "storage_mismatch"),
            (AppError::NoAssetForKey, 404, "asset_not_found"),
            (
                AppError::TokenScope(crate::domain::OutOfScope("x".into())),
                403,
                "token_scope",
            ),
            (
                AppError::UploadTokensDisabled,
                403,
                "upload_tokens_disabled",
            ),
            (
                AppError::RateLimited {
                    limit: 20,
                    retry_after: 3,
                },
                429,
                "rate_limited",
            ),
            (
                AppError::RateLimitUnavailable,
                503,
                "rate_limit_unavailable",
            ),
            (
                AppError::Signature(crate::storage::local::SignatureError::Expired),
                403,
                "url_expired",
            ),
            (
                AppError::UploadRefused(crate::storage::local::UploadRejection::Sealed),
                409,
                "upload_already_complete",
            ),
            (
                AppError::UploadRefused(crate::storage::local::UploadRejection::TooLarge {
                    limit: 5,
                }),
                413,
                "upload_too_large",
            ),
            (AppError::ObjectNotFound, 404, "object_not_found"),
            (
                AppError::DownloadRefused(DownloadRefusal::RangeNotSatisfiable { size: 3 }),
                416,
                "range_not_satisfiable",
            ),
            (
                AppError::NotReady {
                    checks: [("database".to_owned(), "timed out".to_owned())].into(),
                },
                503,
                "not_ready",
            ),
            (
                AppError::MethodNotAllowed {
                    method: "PATCH".into(),
                    path: "/api/upload".into(),
                },
                405,
                "method_not_allowed",
            ),
            (
                AppError::BodyTimeout {
                    timeout: std::time::Duration::from_secs(1),
                },
                408,
                "request_timeout",
            ),
            (
                AppError::Internal(anyhow::anyhow!("boom")),
                500,
                "internal_error",
            ),
            (AppError::RouteNotFound("/nope".into()), 404, "not_found"),
            (
                AppError::Unauthorized(crate::auth::AuthError::Invalid),
                401,
                "unauthorized",
            ),
            (
                AppError::ContentTypeNotAllowed("text/html".into()),
                415,
                "content_type_not_allowed",
            ),
            (
                AppError::QuotaExceeded(crate::db::QuotaExceeded {
                    limit: "max_pending_uploads",
                    allowed: 1,
                    current: 1,
                    requested: 1,
                }),
                403,
                "quota_exceeded",
            ),
            (AppError::NotMultipart, 409, "not_multipart"),
            (
                AppError::StorageUnavailable(StorageError::Unavailable(anyhow::anyhow!("down"))),
                503,
                "storage_unavailable",
            ),
            (
                AppError::MultipartNotSupported,
                400,
                "multipart_not_supported",
            ),
        ];
        for (error, status, code) in cases {
            let problem = error.to_problem();
            assert_eq!(
                (problem.status, problem.code.as_str()),
                (status, code),
                "{error:?}"
            );
            assert_eq!(
                problem.kind,
                format!("urn:cloud-asset-uploader:problem:{code}")
            );
            let mut res = Response::new();
            problem.render(&mut res);
            assert_eq!(res.status_code.map(|s| s.as_u16()), Some(status), "{code}");
            assert_eq!(
                res.headers().get(CONTENT_TYPE).unwrap(),
                PROBLEM_JSON,
                "{code}"
            );
        }
    }

    #[test]
    fn the_mapping_test_lists_every_variant() {
        // A new variant must be added to `every_error_maps_to_its_status_and_code`.
        let source = include_str!("error.rs");
        let start = source.find("pub enum AppError {").unwrap();
        let body = &source[start..start + source[start..].find("\n}\n").unwrap()];
        let test_start = source
            .find("fn every_error_maps_to_its_status_and_code")
            .unwrap();
        let test = &source[test_start..];
        let test = &test[..test.find("\n    }\n").unwrap()];
        let variants: Vec<&str> = body
            .lines()
            .filter_map(|line| line.strip_prefix("    "))
            .filter(|line| line.starts_with(|c: char| c.is_ascii_uppercase()))
            .map(|line| {
                line.split(|c: char| !c.is_ascii_alphanumeric())
                    .next()
                    .unwrap()
            })
            .collect();
        assert!(variants.len() >= 36, "{variants:?}");
        for variant in variants {
            let listed = test.contains(&format!("AppError::{variant}"))
                || (variant == "Validation" && test.contains("ValidationError::new"));
            assert!(
                listed,
                "AppError::{variant} is missing from the mapping test"
            );
        }
    }

    #[test]
    fn validation_errors_name_the_field() {
        let problem = AppError::from(ValidationError::new("expires_in", "too long")).to_problem();
        assert_eq!(problem.field.as_deref(), Some("expires_in"));
        assert_eq!(problem.detail, "expires_in: too long");
    }

    #[test]
    fn refused_uploads_name_the_part_number_and_hide_storage_failures() {
        use crate::storage::local::UploadRejection;
        let part = AppError::UploadRefused(UploadRejection::InvalidPartNumber(0)).to_problem();
        assert_eq!(part.code, "validation_failed");
        assert_eq!(part.field.as_deref(), Some("partNumber"));
        let failure = StorageError::Other(anyhow::anyhow!("disk /srv/secret-volume is full"));
        let stored = AppError::UploadRefused(UploadRejection::Storage(failure)).to_problem();
        assert_eq!(stored.code, "storage_unavailable");
        assert!(!stored.detail.contains("secret"), "{}", stored.detail);
    }

    #[test]
    fn server_errors_hide_their_cause() {
        let secret = "postgres://user:hunter2@db/app";
        let problem = AppError::Internal(anyhow::anyhow!("failed with {secret}")).to_problem();
        assert!(!problem.detail.contains("hunter2"));
        let problem =
            AppError::StorageUnavailable(StorageError::Unavailable(anyhow::anyhow!("{secret}")))
                .to_problem();
        assert!(!problem.detail.contains("hunter2"));
    }

    #[tokio::test]
    async fn problems_render_as_problem_json() {
        let mut res = Response::new();
        AppError::AssetNotComplete.to_problem().render(&mut res);
        assert_eq!(res.status_code, Some(StatusCode::CONFLICT));
        assert_eq!(res.headers().get(CONTENT_TYPE).unwrap(), PROBLEM_JSON);
    }
}
