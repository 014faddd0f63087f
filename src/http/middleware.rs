//! What wraps every request: a request id and one log line, a cap on the header block,
//! problem+json for errors no handler rendered (unknown routes, wrong methods).

use std::time::Instant;

use salvo::http::StatusCode;
use salvo::http::header::{HeaderName, HeaderValue};
use salvo::{Depot, FlowCtrl, Handler, Request, Response, async_trait};
use tracing::Instrument;

use crate::error::{AppError, ProblemDetails};
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Assigns a request id (a client's `x-request-id` when it is sane), echoes it, and logs one
/// line per request: method, path (never the query, which may hold signatures), status and
/// latency.
pub struct RequestLog;

#[async_trait]
impl Handler for RequestLog {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let started = Instant::now();
        let id = req
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_sane_request_id(v))
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
        let span = tracing::info_span!("request", request_id = %id);
        async {
            ctrl.call_next(req, depot, res).await;
            let status = res.status_code.unwrap_or(StatusCode::OK);
            let path = req.uri().path();
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            // Probes arrive every few seconds from the image's HEALTHCHECK and from
            // Kubernetes; a passing one is news only at debug level, a failing one always.
            if is_probe(path) && status.is_success() {
                tracing::debug!(method = %req.method(), path, status = status.as_u16(), latency_ms, "request");
            } else {
                tracing::info!(method = %req.method(), path, status = status.as_u16(), latency_ms, "request");
            }
        }
        .instrument(span)
        .await;
        if let Ok(value) = HeaderValue::from_str(&id) {
            res.headers_mut().insert(REQUEST_ID, value);
        }
        // A stopping server tells kept-alive clients to go elsewhere for their next request.
        let draining = AppState::from_depot(depot)
            .is_ok_and(|state| state.draining.load(std::sync::atomic::Ordering::Acquire));
        if draining {
            res.headers_mut().insert(
                salvo::http::header::CONNECTION,
                HeaderValue::from_static("close"),
            );
        }
    }
}

/// Refuses a request whose header block exceeds `server.max_header_bytes` with 431 (and
/// closes its connection). Blocks past hyper's own, larger buffer never get here; they are
/// answered by `startup::parse_errors` with the same problem.
pub struct HeaderLimit(pub usize);

#[async_trait]
impl Handler for HeaderLimit {
    async fn handle(
        &self,
        req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        // As on the wire: `name: value\r\n` for each field.
        let size: usize = req
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if size > self.0 {
            AppError::HeadersTooLarge { limit: self.0 }
                .to_problem()
                .render(res);
            res.headers_mut().insert(
                salvo::http::header::CONNECTION,
                HeaderValue::from_static("close"),
            );
            ctrl.skip_rest();
        }
    }
}

/// The liveness and readiness routes.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// Ids worth echoing and logging: short, and nothing that could forge a log line.
fn is_sane_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Answers a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
/// with an empty 204, the CORS layer around it adding its headers: no route or gate behind it
/// has anything to say to a preflight.
pub struct AnswerPreflight;

#[async_trait]
impl Handler for AnswerPreflight {
    async fn handle(
        &self,
        req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let headers = req.headers();
        let preflight = req.method() == salvo::http::Method::OPTIONS
            && headers.contains_key(salvo::http::header::ORIGIN)
            && headers.contains_key(salvo::http::header::ACCESS_CONTROL_REQUEST_METHOD);
        if preflight {
            res.status_code(StatusCode::NO_CONTENT);
            ctrl.skip_rest();
        }
    }
}

/// Renders problem+json for error statuses no handler wrote a body for.
pub struct ProblemCatcher;

#[async_trait]
impl Handler for ProblemCatcher {
    async fn handle(
        &self,
        req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
        if !(status.is_client_error() || status.is_server_error())
            || !(res.body.is_none() || res.body.is_error())
        {
            return;
        }
        let problem = match status {
            StatusCode::NOT_FOUND => {
                AppError::RouteNotFound(req.uri().path().to_owned()).to_problem()
            }
            StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed {
                method: req.method().to_string(),
                path: req.uri().path().to_owned(),
            }
            .to_problem(),
            other => ProblemDetails::for_status(other),
        };
        problem.render(res);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_request_ids_are_kept() {
        assert!(is_sane_request_id("01HZX3J5K8-abc_def.1:2"));
        for bad in ["", "a b", "a\nb", "é", &"x".repeat(129)] {
            assert!(!is_sane_request_id(bad), "{bad:?}");
        }
    }
}
