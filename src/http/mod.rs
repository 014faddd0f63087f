//! The HTTP API: one module per route group, one router that merges them, the OpenAPI
//! document, and the middleware every request passes through.

mod access;
mod assets;
mod client_ip;
mod guard;
mod health;
mod json;
mod local_storage;
mod middleware;
mod min_rate;
mod parts;
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
use salvo::oapi::OpenApi;
use salvo::oapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use salvo::oapi::swagger_ui::SwaggerUi;
use salvo::{Depot, Router, Service};

use crate::config::CorsSettings;
use crate::domain::{Asset, AssetId, Owner, UploadScope, ValidationError};
use crate::error::AppError;
use crate::state::AppState;
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
    let doc = OpenApi::new("Cloud Asset Uploader", env!("CARGO_PKG_VERSION"))
        .add_security_scheme(
            "bearer_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer).bearer_format("JWT")),
        )
        .add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(
                crate::auth::api_key::HEADER,
            ))),
        )
        .merge_router(&documented);
    let doc = if state.settings.storage_events.enabled() {
        doc.add_security_scheme(
            "storage_events_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        )
    } else {
        doc
    };
    let doc = crate::events::schema::add_webhook(doc);
    let mut doc = if state.settings.metrics.on_main_listener() {
        doc.add_path("/metrics", crate::metrics::http::openapi_path())
    } else {
        doc
    };

    plain_path_templates(&mut doc);

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

/// Rewrites salvo's catch-all segments (`{**key}`) into OpenAPI path templates (`{key}`):
/// generated clients and validators know only the latter.
fn plain_path_templates(doc: &mut OpenApi) {
    let catch_all: Vec<String> = doc
        .paths
        .keys()
        .filter(|path| path.contains("{**"))
        .cloned()
        .collect();
    for path in catch_all {
        let Some(mut item) = doc.paths.remove(&path) else {
            continue;
        };
        for operation in item.operations.values_mut() {
            for parameter in operation.parameters.0.iter_mut() {
                if let salvo::oapi::RefOr::Type(parameter) = parameter {
                    parameter.name = parameter.name.trim_start_matches("**").to_owned();
                }
            }
        }
        doc.paths.insert(path.replace("{**", "{"), item);
    }
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

/// The owner of the current request, set by the authentication layer.
fn owner_of(depot: &Depot) -> Result<Owner, AppError> {
    depot
        .get_typed::<Owner>()
        .cloned()
        .map_err(|_| AppError::Internal(anyhow::anyhow!("no owner was set for the request")))
}

/// The owner's asset `id`, if the request may use it: a request with a delegated upload token
/// may use only the assets that token created (403 `token_scope` for the owner's others).
async fn find_owned(
    state: &AppState,
    depot: &Depot,
    owner: &Owner,
    id: AssetId,
) -> Result<Asset, AppError> {
    let asset = state
        .assets
        .find(owner, id)
        .await?
        .ok_or(AppError::AssetNotFound(id))?;
    if let Some(scope) = scope_of(depot) {
        scope.check_asset(&asset)?;
    }
    Ok(asset)
}

/// The scope of the delegated upload token the request came with, if any.
fn scope_of(depot: &Depot) -> Option<&UploadScope> {
    depot.get_typed::<UploadScope>().ok()
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
