//! The webhook dispatcher's metrics: attempts and final outcomes by endpoint, attempt
//! latency, and the queue (pending deliveries, age of the oldest due one), which the
//! dispatcher refreshes every few seconds.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::db::QueueStats;

/// Buckets of the attempt latency, from 5 ms to the default 10 s attempt timeout and beyond.
const ATTEMPT_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    endpoint: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    endpoint: String,
    result: &'static str,
}

/// The dispatcher's metrics, part of [`super::Metrics`].
#[derive(Debug)]
pub struct WebhookMetrics {
    deliveries: Family<OutcomeLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    attempt_duration: Family<AttemptLabels, Histogram>,
    queue_depth: Gauge,
    oldest_due: Gauge<f64, AtomicU64>,
}

impl WebhookMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Deliveries finished, by endpoint and outcome (delivered, failed)",
            deliveries.clone(),
        );
        let attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Delivery attempts, by endpoint and result (success, http_error, no_answer, refused)",
            attempts.clone(),
        );
        let attempt_duration = Family::<AttemptLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(ATTEMPT_BUCKETS)) as fn() -> _,
        );
        registry.register_with_unit(
            "webhook_attempt_duration",
            "Time of each delivery attempt, by endpoint and result",
            Unit::Seconds,
            attempt_duration.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "webhook_queue_depth",
            "Deliveries not yet delivered or given up (all replicas)",
            queue_depth.clone(),
        );
        let oldest_due = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "webhook_oldest_due_age",
            "How long the earliest due delivery has been waiting for an attempt",
            Unit::Seconds,
            oldest_due.clone(),
        );
        Self {
            deliveries,
            attempts,
            attempt_duration,
            queue_depth,
            oldest_due,
        }
    }

    /// Counts one attempt and its latency.
    pub fn record_attempt(&self, endpoint: &str, result: &'static str, elapsed: Duration) {
        let labels = AttemptLabels {
            endpoint: endpoint.to_owned(),
            result,
        };
        self.attempts.get_or_create(&labels).inc();
        self.attempt_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a delivery that finished (`delivered` or `failed`).
    pub fn record_outcome(&self, endpoint: &str, outcome: &'static str) {
        self.deliveries
            .get_or_create(&OutcomeLabels {
                endpoint: endpoint.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Sets the queue gauges.
    pub fn set_queue(&self, stats: QueueStats) {
        self.queue_depth.set(stats.pending);
        self.oldest_due.set(stats.oldest_due_secs);
    }
}
