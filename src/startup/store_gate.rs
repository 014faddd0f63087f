//! [`StoreGate`]: while the store is not verified as the one the database records, every
//! `/api` request is answered 503 before it is routed, so no URL is signed into the wrong
//! store and no record is written for an upload that could not go anywhere.

use std::sync::Arc;

use anyhow::anyhow;
use salvo::{Depot, FlowCtrl, Handler, Request, Response, async_trait};

use crate::error::AppError;
use crate::storage::StorageError;
use crate::storage::identity::{StoreGuard, StoreStatus};

/// The hoop in front of the whole service; costs one atomic load per request.
pub struct StoreGate(pub Arc<StoreGuard>);

#[async_trait]
impl Handler for StoreGate {
    async fn handle(
        &self,
        req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let refusal = match self.0.status() {
            StoreStatus::Verified => return,
            StoreStatus::WrongStore => AppError::StorageMismatch,
            StoreStatus::Unverified => AppError::StorageUnavailable(StorageError::Unavailable(
                anyhow!("the store identity is not verified yet"),
            )),
        };
        if is_api(req.uri().path()) {
            // Not logged per request: the check logged why, once, when it failed.
            refusal.to_problem().render(res);
            ctrl.skip_rest();
        }
    }
}

/// Whether `path` routes to the API: its first non-empty segment, decoded as the router
/// decodes it, is `api`.
fn is_api(path: &str) -> bool {
    path.split('/')
        .find(|segment| !segment.is_empty())
        .is_some_and(|first| {
            percent_encoding::percent_decode_str(first).decode_utf8_lossy() == "api"
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_recognised_however_they_are_spelled() {
        for path in [
            "/api",
            "/api/upload",
            "//api/status",
            "/%61pi/access",
            "/api/",
        ] {
            assert!(is_api(path), "{path}");
        }
        for path in [
            "/",
            "/readyz",
            "/healthz",
            "/docs",
            "/apis",
            "/storage/assets/api",
        ] {
            assert!(!is_api(path), "{path}");
        }
    }
}
