//! Rendering a refused upload of the local storage routes: storage failures are logged with
//! their cause (which never reaches the client); the problem itself is `AppError`'s.

use salvo::Response;

use crate::error::AppError;
use crate::storage::local::UploadRejection;

/// Renders a refused upload, logging storage failures.
pub fn rejected(rejection: UploadRejection, res: &mut Response) {
    if let UploadRejection::Storage(e) = &rejection {
        tracing::error!(error = %crate::error::error_chain(e), "local upload failed");
    }
    AppError::UploadRefused(rejection).to_problem().render(res);
}
