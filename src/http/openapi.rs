//! The OpenAPI document: the documented routes' operations, the security schemes, the problem
//! responses every guarded operation shares (listed once, here, not on each endpoint), and the
//! rewrites generated clients need.

use salvo::Router;
use salvo::oapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use salvo::oapi::{Content, OpenApi, Ref, RefOr, Response};

use crate::error::PROBLEM_JSON;
use crate::state::AppState;

/// The responses of the guard in front of every `/api` and `/uppy` operation (authentication
/// and rate limits), added to each such operation that does not document the status itself.
const GUARD_PROBLEMS: &[(&str, &str)] = &[
    ("401", "Missing or refused credentials (`unauthorized`)"),
    (
        "429",
        "Rate limit exceeded (`rate_limited`); see `Retry-After`",
    ),
    (
        "503",
        "The database or the rate limiter (`rate_limit_unavailable`) is unavailable",
    ),
];

/// The document of `documented`, as served at `/openapi.json`.
pub fn document(state: &AppState, documented: &Router) -> OpenApi {
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
        .merge_router(documented);
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
    add_guard_problems(&mut doc);
    plain_path_templates(&mut doc);
    doc
}

/// Whether the guard (credentials, rate limits) stands in front of `path`. Storage
/// notifications carry their own token and have no rate limit.
fn is_guarded(path: &str) -> bool {
    (path.starts_with("/api/") && path != "/api/storage-events") || path.starts_with("/uppy/")
}

fn add_guard_problems(doc: &mut OpenApi) {
    for (path, item) in doc.paths.iter_mut() {
        if !is_guarded(path) {
            continue;
        }
        for operation in item.operations.values_mut() {
            for (status, description) in GUARD_PROBLEMS {
                if operation.responses.contains_key(*status) {
                    continue;
                }
                let problem = Response::new(*description).add_content(
                    PROBLEM_JSON,
                    Content::new(RefOr::<salvo::oapi::Schema>::Ref(Ref::from_schema_name(
                        "ProblemDetails",
                    ))),
                );
                operation.responses.insert(*status, problem);
            }
        }
    }
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
                if let RefOr::Type(parameter) = parameter {
                    parameter.name = parameter.name.trim_start_matches("**").to_owned();
                }
            }
        }
        doc.paths.insert(path.replace("{**", "{"), item);
    }
}
