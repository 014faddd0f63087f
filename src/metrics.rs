//! Prometheus metrics: one [`Metrics`] registry per application, rendered at `GET /metrics`
//! in the OpenMetrics text format. Every name starts with `uploader_`.
//!
//! - `uploader_http_requests_total` and `uploader_http_request_duration_seconds`, labelled
//!   by route template (`/api/upload`, `/storage/{bucket}/{**key}`; `unmatched` for requests
//!   no route took), method and status: recorded by [`http::RecordRequests`].
//! - `uploader_assets_created_total`, `uploader_assets_completed_total`,
//!   `uploader_assets_deleted_total`, `uploader_assets_swept_total`.
//! - `uploader_storage_operation_duration_seconds` by operation and outcome: recorded by
//!   [`storage::InstrumentedStorage`] around every call of the storage backend.
//! - `uploader_db_pool_*`: the Postgres pool's connections, idle connections and waiting
//!   requests, and `uploader_db_shared_connections`, read at each scrape.
//! - `uploader_rate_limit_backend_errors_total`: requests whose rate limit Redis could not
//!   decide (answered as `rate_limit.redis.on_error` says).
//! - `uploader_webhook_*`: deliveries and attempts by endpoint, attempt latency, queue
//!   depth and the age of the oldest due delivery (see [`webhooks`]).
//! - `uploader_storage_events_total`: object-created records of storage notifications, by
//!   outcome (`completed`, `already_complete`, `left_pending`, `unknown_key`, …).
//! - `uploader_build_info`: the version, as a label of a constant 1.

pub mod http;
pub mod storage;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::db::{PgPool, SharedConnections};

/// Prefix of every metric name.
const PREFIX: &str = "uploader";
/// Latency buckets in seconds, from half a millisecond (a presign) to ten seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Labels of the HTTP metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

/// Labels of the storage latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StorageLabels {
    operation: &'static str,
    outcome: &'static str,
}

/// Labels of the storage notification counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Every metric the service records, and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: Family<RequestLabels, Histogram>,
    assets_created: Counter,
    assets_completed: Counter,
    assets_deleted: Counter,
    assets_swept: Counter,
    rate_limit_backend_errors: Counter,
    storage_duration: Family<StorageLabels, Histogram>,
    storage_events: Family<OutcomeLabels, Counter>,
    webhooks: webhooks::WebhookMetrics,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    /// Registers every metric; the state of the pool and of the shared connections is read
    /// at each scrape.
    pub fn new(pool: PgPool, shared: Option<Arc<SharedConnections>>) -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            http_requests.clone(),
        );
        let http_duration = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> _,
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from receiving a request to its response, by route template, method and status",
            Unit::Seconds,
            http_duration.clone(),
        );
        let assets_created = Counter::default();
        registry.register(
            "assets_created",
            "Pending assets created by POST /api/upload",
            assets_created.clone(),
        );
        let assets_completed = Counter::default();
        registry.register(
            "assets_completed",
            "Assets marked complete after storage was verified",
            assets_completed.clone(),
        );
        let assets_deleted = Counter::default();
        registry.register(
            "assets_deleted",
            "Assets deleted by DELETE /api/assets/{asset_id}",
            assets_deleted.clone(),
        );
        let assets_swept = Counter::default();
        registry.register(
            "assets_swept",
            "Abandoned pending assets removed by the sweeper",
            assets_swept.clone(),
        );
        let rate_limit_backend_errors = Counter::default();
        registry.register(
            "rate_limit_backend_errors",
            "Requests whose rate limit Redis could not decide, answered as rate_limit.redis.on_error says",
            rate_limit_backend_errors.clone(),
        );
        let storage_duration = Family::<StorageLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> _,
        );
        registry.register_with_unit(
            "storage_operation_duration",
            "Time of each storage backend call, by operation and outcome",
            Unit::Seconds,
            storage_duration.clone(),
        );
        let storage_events = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "storage_events",
            "Object-created records received at POST /api/storage-events, by outcome",
            storage_events.clone(),
        );
        registry.register(
            "build",
            "Version of the running build",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let webhooks = webhooks::WebhookMetrics::register(&mut registry);
        registry.register_collector(Box::new(PoolCollector { pool, shared }));
        Self {
            registry,
            http_requests,
            http_duration,
            assets_created,
            assets_completed,
            assets_deleted,
            assets_swept,
            rate_limit_backend_errors,
            storage_duration,
            storage_events,
            webhooks,
        }
    }

    /// The webhook dispatcher's metrics.
    pub fn webhooks(&self) -> &webhooks::WebhookMetrics {
        &self.webhooks
    }

    /// Counts one answered request and its latency.
    pub fn record_request(
        &self,
        route: String,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let labels = RequestLabels {
            route,
            method,
            status,
        };
        self.http_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.http_requests.get_or_create(&labels).inc();
    }

    /// Counts a pending asset created.
    pub fn asset_created(&self) {
        self.assets_created.inc();
    }

    /// Counts an asset marked complete.
    pub fn asset_completed(&self) {
        self.assets_completed.inc();
    }

    /// Counts an asset deleted through the API.
    pub fn asset_deleted(&self) {
        self.assets_deleted.inc();
    }

    /// Counts abandoned assets the sweeper removed.
    pub fn assets_swept(&self, count: u64) {
        self.assets_swept.inc_by(count);
    }

    /// The counter of requests the Redis rate limiter could not decide, for it to increment.
    pub fn rate_limit_backend_errors(&self) -> Counter {
        self.rate_limit_backend_errors.clone()
    }

    /// Records one storage call.
    pub fn record_storage(
        &self,
        operation: &'static str,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        self.storage_duration
            .get_or_create(&StorageLabels { operation, outcome })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one object-created record of a storage notification, by what came of it.
    pub fn storage_event(&self, outcome: &'static str) {
        self.storage_events
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Every metric in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// Reads the pool's state at scrape time, so the gauges are never stale.
#[derive(Debug)]
struct PoolCollector {
    pool: PgPool,
    shared: Option<Arc<SharedConnections>>,
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let state = self.pool.state();
        let gauges = [
            (
                "db_pool_connections",
                "Connections the Postgres pool holds open",
                i64::from(state.connections),
            ),
            (
                "db_pool_idle_connections",
                "Open connections not lent to a request",
                i64::from(state.idle_connections),
            ),
            (
                "db_pool_max_connections",
                "Most connections the pool may open (database.pool_size)",
                i64::from(self.pool.config().max_size),
            ),
            (
                "db_pool_waiting_requests",
                "Requests waiting for a connection right now",
                i64::try_from(state.statistics.pending_gets()).unwrap_or(i64::MAX),
            ),
            (
                "db_shared_connections",
                "Open connections that requests share for single statements",
                self.shared.as_ref().map_or(0, |shared| {
                    i64::try_from(shared.open_count()).unwrap_or(i64::MAX)
                }),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let counters = [
            (
                "db_pool_waited_gets",
                "Requests for a connection that had to wait for one",
                state.statistics.get_waited,
            ),
            (
                "db_pool_timed_out_gets",
                "Requests for a connection that gave up after database.connect_timeout_secs",
                state.statistics.get_timed_out,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
