//! The problems the local storage routes answer: signature failures and refused uploads,
//! each with its stable code.

use salvo::Response;
use salvo::http::StatusCode;

use crate::error::ProblemDetails;
use crate::storage::local::{SignatureError, UploadRejection};

/// A refused signature: 403 with what was wrong.
pub fn signature_problem(error: SignatureError) -> ProblemDetails {
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

/// Renders a refused upload, logging storage failures (their cause never reaches the client).
pub fn rejected(rejection: UploadRejection, res: &mut Response) {
    if let UploadRejection::Storage(e) = &rejection {
        tracing::error!(error = %crate::error::error_chain(e), "local upload failed");
    }
    rejection_problem(rejection).render(res);
}

fn rejection_problem(rejection: UploadRejection) -> ProblemDetails {
    let (status, code) = match &rejection {
        UploadRejection::Signature(error) => return signature_problem(error.clone()),
        UploadRejection::InvalidPartNumber(_) => {
            let mut problem = ProblemDetails::new(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                "Invalid request",
                rejection.to_string(),
            );
            problem.field = Some("partNumber".to_owned());
            return problem;
        }
        UploadRejection::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "upload_too_large"),
        UploadRejection::LengthMismatch { .. } => {
            (StatusCode::BAD_REQUEST, "content_length_mismatch")
        }
        UploadRejection::ChecksumMismatch => (StatusCode::BAD_REQUEST, "checksum_mismatch"),
        UploadRejection::ContentTypeMismatch => (StatusCode::FORBIDDEN, "content_type_mismatch"),
        UploadRejection::BodyRead(_) => (StatusCode::BAD_REQUEST, "body_unreadable"),
        UploadRejection::MalformedForm(_) => (StatusCode::BAD_REQUEST, "malformed_form"),
        UploadRejection::NoSuchUpload => (StatusCode::NOT_FOUND, "no_such_upload"),
        UploadRejection::Sealed => (StatusCode::CONFLICT, "upload_already_complete"),
        UploadRejection::Storage(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
    };
    let detail = match rejection {
        UploadRejection::Storage(_) => "The object could not be stored; retry later.".to_owned(),
        other => other.to_string(),
    };
    ProblemDetails::new(status, code, "Upload refused", detail)
}
