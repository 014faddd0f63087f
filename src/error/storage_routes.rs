//! The problems of the local backend's `/storage/…` routes: a refused signature, a refused
//! upload, a refused download, a missing object. Rendered by [`super::AppError`] like every other problem.

use salvo::http::StatusCode as S;

use crate::storage::local::{SignatureError, UploadRejection};

/// Status, code and title of a refused signature.
pub(super) fn signature(error: &SignatureError) -> (S, &'static str, &'static str) {
    let code = match error {
        SignatureError::Malformed => "signature_missing",
        SignatureError::Mismatch => "signature_mismatch",
        SignatureError::Expired => "url_expired",
    };
    (S::FORBIDDEN, code, "Request not authorised")
}

/// Status, code and title of a refused upload.
pub(super) fn rejection(rejection: &UploadRejection) -> (S, &'static str, &'static str) {
    let (status, code) = match rejection {
        UploadRejection::Signature(error) => return signature(error),
        UploadRejection::InvalidPartNumber(_) => {
            return (S::BAD_REQUEST, "validation_failed", "Invalid request");
        }
        UploadRejection::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "upload_too_large"),
        UploadRejection::LengthMismatch { .. } => (S::BAD_REQUEST, "content_length_mismatch"),
        UploadRejection::ChecksumMismatch => (S::BAD_REQUEST, "checksum_mismatch"),
        UploadRejection::ContentTypeMismatch => (S::FORBIDDEN, "content_type_mismatch"),
        UploadRejection::BodyRead(error) if crate::http::is_too_slow(error) => {
            (S::REQUEST_TIMEOUT, "upload_too_slow")
        }
        UploadRejection::BodyRead(_) => (S::BAD_REQUEST, "body_unreadable"),
        UploadRejection::MalformedForm(_) => (S::BAD_REQUEST, "malformed_form"),
        UploadRejection::NoSuchUpload => (S::NOT_FOUND, "no_such_upload"),
        UploadRejection::Sealed => (S::CONFLICT, "upload_already_complete"),
        UploadRejection::Storage(_) => (S::SERVICE_UNAVAILABLE, "storage_unavailable"),
    };
    (status, code, "Upload refused")
}

/// Why a download from a local `/storage/…` URL was not answered with the object's bytes.
#[derive(Debug, thiserror::Error)]
pub enum DownloadRefusal {
    #[error("The requested range is not satisfiable: the object has {size} bytes.")]
    RangeNotSatisfiable { size: u64 },
    #[error("The Range header is not valid text.")]
    MalformedRange,
    #[error("The object does not meet the request's If-Match or If-Unmodified-Since condition.")]
    PreconditionFailed,
}

/// Status, code and title of a refused download.
pub(super) fn download(refusal: &DownloadRefusal) -> (S, &'static str, &'static str) {
    match refusal {
        DownloadRefusal::RangeNotSatisfiable { .. } => (
            S::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            "Range not satisfiable",
        ),
        DownloadRefusal::MalformedRange => (S::BAD_REQUEST, "malformed_range", "Invalid range"),
        DownloadRefusal::PreconditionFailed => (
            S::PRECONDITION_FAILED,
            "precondition_failed",
            "Precondition failed",
        ),
    }
}
