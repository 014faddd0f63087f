//! The HTTP API: one module per route group, one router that merges them, the OpenAPI
//! document, and the middleware every request passes through.

mod access;
mod assets;
mod caller;
mod client_ip;
mod guard;
mod health;
mod json;
mod local_storage;
mod middleware;
mod min_rate;
mod openapi;
mod parts;
mod query;
pub mod rate_limit;
mod status;
mod storage_events;
mod upload_tokens;
mod uploads;
mod uppy;
mod web;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use salvo::affix_state;
use salvo::catcher::Catcher;
use salvo::cors::{AllowHeaders, AllowMethods, AllowOrigin, Cors, CorsHandler};
use salvo::oapi::swagger_ui::SwaggerUi;
use salvo::{Router, Service};

use crate::config::CorsSettings;
use crate::domain::ValidationError;
use crate::state::AppState;
use caller::Caller;
use guard::Guard;
pub use min_rate::is_too_slow;
use rate_limit::RouteGroup;

/// The whole HTTP service: API routes, local storage routes (local backend), docs, probes.
pub fn service(state: AppState) -> Service {
    let api = Router::with_path("api")
        .push(
            Router::with_path("upload")
                .hoop(Guard(RouteGroup::Issue))
                .post(uploads::presign_upload)
                .push(Router::with_path("{asset_id}/parts").post(parts::sign_parts)),
        )
        .push(
            Router::with_path("upload-tokens")
                .hoop(Guard(RouteGroup::Issue))
                .post(upload_tokens::create_upload_token),
        )
        .push(
            Router::with_path("status")
                .hoop(Guard(RouteGroup::Issue))
                .put(status::mark_status),
        )
        .push(
            Router::with_path("access")
                .hoop(Guard(RouteGroup::Read))
                .get(access::presign_access),
        )
        .push(
            Router::with_path("assets")
                .push(
                    Router::new()
                        .hoop(Guard(RouteGroup::Read))
                        .get(assets::list_assets),
                )
                .push(
                    Router::with_path("{asset_id}")
                        .push(
                            Router::new()
                                .hoop(Guard(RouteGroup::Read))
                                .get(assets::get_asset),
                        )
                        .push(
                            Router::new()
                                .hoop(Guard(RouteGroup::Issue))
                                .delete(assets::delete_asset),
                        ),
                ),
        );
    // The object store's notifications carry their own token; no owner, no rate limit.
    let api = if state.settings.storage_events.enabled() {
        api.push(Router::with_path("storage-events").post(storage_events::receive_storage_events))
    } else {
        api
    };
    let probes = Router::new()
        .push(Router::with_path("healthz").get(health::healthz))
        .push(Router::with_path("readyz").get(health::readyz));
    let mut documented = Router::new()
        .push(api)
        .push(probes)
        .push(uppy::token_routes());
    if state.local_storage.is_some() {
        documented = documented
            .push(Router::with_path("storage/{bucket}").post(local_storage::post_object))
            .push(
                Router::with_path("storage/{bucket}/{**key}")
                    .put(local_storage::put_object)
                    .get(local_storage::get_object)
                    .head(local_storage::head_object),
            );
    }
    let doc = openapi::document(&state, &documented);

    let mut router = Router::new()
        .hoop(affix_state::inject(state.clone()))
        .push(documented)
        .push(doc.into_router("/openapi.json"))
        .push(
            SwaggerUi::new("/openapi.json")
                .title("Cloud Asset Uploader API")
                .into_router("/docs"),
        );
    // The header-authenticated Uppy routes repeat the documented ones (same operations).
    router = router.push(uppy::header_routes());
    router = router.push(web::client_router());
    if state.settings.ui.enabled {
        router = router.push(web::page_router(&state.settings));
    }
    if state.settings.metrics.on_main_listener() {
        router = router.push(crate::metrics::http::router(state.metrics.clone()));
    }
    let mut service = Service::new(router)
        .catcher(Catcher::new(middleware::ProblemCatcher))
        .hoop(middleware::RequestLog)
        .hoop(crate::metrics::http::RecordRequests(state.metrics.clone()))
        .hoop(middleware::HeaderLimit(
            state.settings.server.max_header_bytes,
        ));
    // CORS wraps everything but the log (preflight requests match no route), only when origins
    // are set; a preflight is answered right there, so it is logged as the 204 it gets.
    if let Some(cors) = cors(&state.settings.cors) {
        service = service.hoop(cors).hoop(middleware::AnswerPreflight);
    }
    service
}

/// The CORS layer for the configured origins, or `None` when no origin is allowed.
fn cors(settings: &CorsSettings) -> Option<CorsHandler> {
    if settings.allowed_origins.is_empty() {
        return None;
    }
    let origins = if settings.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            settings
                .allowed_origins
                .iter()
                .filter_map(|o| o.parse().ok()),
        )
    };
    let methods: Vec<salvo::http::Method> = settings
        .allowed_methods
        .iter()
        .filter_map(|m| m.parse().ok())
        .collect();
    let headers: Vec<salvo::http::HeaderName> = settings
        .allowed_headers
        .iter()
        .filter_map(|h| h.parse().ok())
        .collect();
    Some(
        Cors::new()
            .allow_origin(origins)
            .allow_methods(AllowMethods::list(methods))
            .allow_headers(AllowHeaders::list(headers))
            .expose_headers(vec![
                // Multipart uploads complete with each part's ETag.
                "etag",
                "x-request-id",
                "ratelimit-limit",
                "ratelimit-remaining",
                "retry-after",
                // A player reading ranges of a local download needs where each one lies.
                "content-range",
                "accept-ranges",
            ])
            .max_age(Duration::from_secs(settings.max_age_secs))
            .into_handler(),
    )
}

/// A requested URL lifetime, checked against the configured bounds.
fn expiry(requested: Option<u64>, default: u64, max: u64) -> Result<Duration, ValidationError> {
    let seconds = requested.unwrap_or(default);
    if seconds == 0 || seconds > max {
        return Err(ValidationError::new(
            "expires_in",
            format!("must be between 1 and {max} seconds"),
        ));
    }
    Ok(Duration::from_secs(seconds))
}

/// Now plus `duration`, in whole seconds (signed URLs carry whole seconds).
fn now_plus(duration: Duration) -> DateTime<Utc> {
    let now = Utc::now().timestamp();
    DateTime::from_timestamp(now + duration.as_secs() as i64, 0).unwrap_or_else(Utc::now)
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_stays_within_bounds() {
        assert_eq!(expiry(None, 60, 1800).unwrap(), Duration::from_secs(60));
        assert_eq!(
            expiry(Some(1800), 60, 1800).unwrap(),
            Duration::from_secs(1800)
        );
        assert_eq!(expiry(Some(1), 60, 1800).unwrap(), Duration::from_secs(1));
        assert_eq!(expiry(Some(0), 60, 1800).unwrap_err().field, "expires_in");
        assert_eq!(
            expiry(Some(1801), 60, 1800).unwrap_err().field,
            "expires_in"
        );
    }
}
