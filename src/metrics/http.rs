//! The HTTP side of the metrics: the hoop that records every request, `GET /metrics`, and
//! the separate listener that serves it when `metrics.bind` is set.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use salvo::conn::tcp::TcpAcceptor;
use salvo::http::header::{CONTENT_TYPE, HeaderValue};
use salvo::http::{Method, StatusCode};
use salvo::server::ServerHandle;
use salvo::{Depot, FlowCtrl, Handler, Request, Response, Router, Server, Service, async_trait};

use super::Metrics;

/// Route label of requests no route took (404, 405): raw paths would make the label set
/// unbounded.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// Media type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Counts every request and its latency by route template, method and status.
pub struct RecordRequests(pub Arc<Metrics>);

#[async_trait]
impl Handler for RecordRequests {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let started = Instant::now();
        ctrl.call_next(req, depot, res).await;
        let status = res.status_code.unwrap_or(StatusCode::OK).as_u16();
        self.0.record_request(
            route_label(req.matched_path()),
            method_label(req.method()),
            status,
            started.elapsed(),
        );
    }
}

/// The template of the route that took the request (`/api/upload`,
/// `/storage/{bucket}/{**key}`), or [`UNMATCHED_ROUTE`].
fn route_label(matched_path: &str) -> String {
    if matched_path.is_empty() {
        UNMATCHED_ROUTE.to_owned()
    } else {
        let mut route = String::with_capacity(matched_path.len() + 1);
        route.push('/');
        route.push_str(matched_path);
        route
    }
}

/// The method as a label; anything outside the standard set is `other`, so clients cannot
/// grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// `GET /metrics`: every metric in the OpenMetrics text format.
pub struct ServeMetrics(pub Arc<Metrics>);

#[async_trait]
impl Handler for ServeMetrics {
    async fn handle(
        &self,
        _req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
        if res.write_body(self.0.render()).is_err() {
            res.status_code(StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
}

/// `GET /metrics` as the OpenAPI document describes it (the handler is no endpoint: it is
/// served on a listener of its own when `metrics.bind` is set).
pub fn openapi_path() -> salvo::oapi::PathItem {
    use salvo::oapi::{BasicType, Content, Object, Operation, PathItem, PathItemType};
    let text = Content::new(Object::with_type(BasicType::String));
    let ok = salvo::oapi::Response::new(
        "Every metric (`uploader_*`) in the OpenMetrics text format; see the README's metrics table",
    )
    .add_content(OPENMETRICS, text);
    PathItem::new(
        PathItemType::Get,
        Operation::new()
            .operation_id("metrics")
            .add_tag("operations")
            .summary("Prometheus metrics")
            .add_response("200", ok),
    )
}

/// The `GET /metrics` route.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::with_path("metrics").get(ServeMetrics(metrics))
}

/// `GET /metrics` on a listener of its own (`metrics.bind`), apart from the API.
pub struct MetricsListener {
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
    metrics: Arc<Metrics>,
}

impl MetricsListener {
    /// Binds `bind` (port 0 picks a free port).
    pub async fn bind(bind: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding metrics.bind {bind}"))?;
        let local_addr = listener
            .local_addr()
            .context("reading the metrics address")?;
        let acceptor = TcpAcceptor::try_from(listener).context("preparing the metrics listener")?;
        Ok(Self {
            acceptor,
            local_addr,
            metrics,
        })
    }

    /// The address `/metrics` is served on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves in the background until the returned handle is told to stop.
    pub fn spawn(self) -> ServerHandle {
        let server = Server::new(self.acceptor);
        let handle = server.handle();
        let service = Service::new(router(self.metrics));
        tracing::info!(address = %self.local_addr, "serving metrics");
        tokio::spawn(async move {
            if let Err(error) = server.try_serve(service).await {
                tracing::error!(error = %error, "the metrics listener stopped");
            }
        });
        handle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_labelled_by_template_and_unmatched_requests_by_a_constant() {
        assert_eq!(route_label("api/upload"), "/api/upload");
        assert_eq!(route_label(""), UNMATCHED_ROUTE);
    }

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(
            method_label(&Method::from_bytes(b"PROPFIND").unwrap()),
            "other"
        );
    }
}
