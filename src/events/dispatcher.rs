//! The dispatcher every replica runs: move new events out of the intake, claim due deliveries,
//! attempt them, record the outcome.
//!
//! Claims use `FOR UPDATE SKIP LOCKED` and push the claimed rows' `next_attempt_at` out by a
//! lease, so replicas never take the same delivery at once and a replica that dies mid-attempt
//! only delays its claims by the lease. Delivery is at least once: a receiver that answered
//! 2xx after the lease ran out, or just before a crash, may get the event again, with the same
//! `webhook-id`. Between claims it gives up deliveries past `webhooks.max_age`, prunes what
//! `webhooks.retention` no longer keeps, and refreshes the queue gauges.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::watch;

use super::sender::{Attempt, Endpoint, Sender};
use crate::config::WebhookSettings;
use crate::db::{AttemptRecord, ClaimedDelivery, DbError, EventRepository, PgPool};
use crate::metrics::Metrics;

/// How often the housekeeping (give up, prune, gauges) runs at most.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(5);
/// Events pruned per statement.
const PRUNE_BATCH: u32 = 1000;

/// Delivers the events of the configured endpoints.
pub struct Dispatcher {
    events: EventRepository,
    sender: Sender,
    endpoints: HashMap<String, Endpoint>,
    /// The names of `endpoints`: the only deliveries this replica claims.
    names: Vec<String>,
    settings: WebhookSettings,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    /// A dispatcher for `settings.endpoints` (none: it only keeps house).
    pub fn new(
        pool: PgPool,
        settings: &WebhookSettings,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let endpoints = settings
            .endpoints
            .iter()
            .map(|e| Endpoint::from_settings(e).map(|endpoint| (endpoint.name.clone(), endpoint)))
            .collect::<anyhow::Result<HashMap<_, _>>>()?;
        Ok(Self {
            events: EventRepository::new(pool),
            sender: Sender::new(settings)?,
            names: endpoints.keys().cloned().collect(),
            endpoints,
            settings: settings.clone(),
            metrics,
        })
    }

    /// Runs until `stop` turns true or its sender is dropped; an attempt under way finishes
    /// (at most `webhooks.attempt_timeout`), claims not yet tried fall due after their lease.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut last_housekeeping: Option<Instant> = None;
            while !*stop.borrow() {
                if last_housekeeping.is_none_or(|at| at.elapsed() >= HOUSEKEEPING_INTERVAL) {
                    self.keep_house().await;
                    last_housekeeping = Some(Instant::now());
                }
                let wait = match self.dispatch_once().await {
                    Ok(0) if !self.names.is_empty() => Some(self.settings.poll_interval),
                    Ok(0) => Some(HOUSEKEEPING_INTERVAL),
                    Ok(_) => None,
                    Err(error) => {
                        // The database is down or not migrated yet: no need to ask every poll.
                        tracing::warn!(error = %crate::error::error_chain(&error), "claiming webhook deliveries failed");
                        Some(HOUSEKEEPING_INTERVAL.max(self.settings.poll_interval))
                    }
                };
                if let Some(wait) = wait {
                    tokio::select! {
                        changed = stop.changed() => if changed.is_err() { break },
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
            tracing::debug!("webhook dispatcher stopped");
        })
    }

    /// Moves one batch of new events out of the intake, claims one batch of due deliveries and
    /// attempts them all at once; returns how many were attempted.
    pub async fn dispatch_once(&self) -> Result<usize, DbError> {
        if self.names.is_empty() {
            return Ok(0);
        }
        self.events.take_intake(self.settings.batch_size).await?;
        let lease = self.settings.attempt_timeout * 2 + Duration::from_secs(5);
        let claimed = self
            .events
            .claim(&self.names, self.settings.batch_size, lease)
            .await?;
        let count = claimed.len();
        futures::future::join_all(claimed.into_iter().map(|d| self.attempt(d))).await;
        Ok(count)
    }

    async fn attempt(&self, delivery: ClaimedDelivery) {
        let Some(endpoint) = self.endpoints.get(&delivery.endpoint) else {
            return;
        };
        let started = Instant::now();
        let attempt = self.sender.send(endpoint, &delivery).await;
        let webhooks = self.metrics.webhooks();
        webhooks.record_attempt(&endpoint.name, attempt_result(&attempt), started.elapsed());
        if let Attempt::Failed {
            error,
            refused: true,
        } = &attempt
        {
            tracing::warn!(endpoint = %endpoint.name, delivery_id = delivery.id, error = %error, "webhook target refused");
        }
        let record = decide(&self.settings, &delivery, &attempt, Utc::now());
        match &record {
            AttemptRecord::Delivered { .. } => {
                webhooks.record_outcome(&endpoint.name, "delivered");
                tracing::debug!(endpoint = %endpoint.name, delivery_id = delivery.id, event_type = %delivery.event_type, "webhook delivered");
            }
            AttemptRecord::Failed { error, .. } => {
                webhooks.record_outcome(&endpoint.name, "failed");
                tracing::warn!(endpoint = %endpoint.name, delivery_id = delivery.id, attempts = delivery.attempts, error = %error, "webhook delivery failed for good");
            }
            AttemptRecord::Retry { after, error, .. } => {
                tracing::info!(endpoint = %endpoint.name, delivery_id = delivery.id, attempts = delivery.attempts, retry_in_ms = after.as_millis() as u64, error = %error, "webhook attempt failed; will retry");
            }
        }
        if let Err(error) = self
            .events
            .record(delivery.id, delivery.attempts, &record)
            .await
        {
            // The claim's lease runs out and the delivery is attempted again: at least once.
            tracing::warn!(delivery_id = delivery.id, error = %crate::error::error_chain(&error), "recording a webhook attempt failed");
        }
    }

    /// Moves what is left in the intake, gives up overdue deliveries, prunes old ones, refreshes
    /// the queue gauges.
    async fn keep_house(&self) {
        let result: Result<(), DbError> = async {
            // Events a replica without endpoints recorded before its endpoints were removed,
            // or while none of the others was running.
            self.events.take_intake(self.settings.batch_size).await?;
            let given_up = self.events.give_up_overdue(self.settings.max_age).await?;
            if given_up > 0 {
                tracing::warn!(
                    count = given_up,
                    "gave up webhook deliveries older than webhooks.max_age"
                );
            }
            let pruned = self
                .events
                .prune(self.settings.retention, PRUNE_BATCH)
                .await?;
            if pruned > 0 {
                tracing::info!(
                    events = pruned,
                    "pruned events older than webhooks.retention"
                );
            }
            let stats = self.events.queue_stats().await?;
            self.metrics.webhooks().set_queue(stats);
            Ok(())
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(error = %crate::error::error_chain(&error), "webhook housekeeping failed");
        }
    }
}

fn attempt_result(attempt: &Attempt) -> &'static str {
    match attempt {
        Attempt::Delivered { .. } => "success",
        Attempt::Rejected { .. } => "http_error",
        Attempt::Failed { refused: true, .. } => "refused",
        Attempt::Failed { .. } => "no_answer",
    }
}

/// What to record after `attempt`: delivered, another try after a backoff, or given up when
/// the attempts are used up or the next one would fall outside `max_age`.
pub fn decide(
    settings: &WebhookSettings,
    delivery: &ClaimedDelivery,
    attempt: &Attempt,
    now: DateTime<Utc>,
) -> AttemptRecord {
    let (status_code, error) = match attempt {
        Attempt::Delivered { status_code } => {
            return AttemptRecord::Delivered {
                status_code: *status_code,
            };
        }
        Attempt::Rejected { status_code } => (Some(*status_code), format!("HTTP {status_code}")),
        Attempt::Failed { error, .. } => (None, error.clone()),
    };
    let after = backoff(settings, delivery.attempts);
    let deadline = delivery.started_at + settings.max_age;
    let next = now + after;
    if delivery.attempts >= settings.max_attempts || next > deadline {
        return AttemptRecord::Failed {
            status_code,
            error: format!("{error} (gave up after {} attempts)", delivery.attempts),
        };
    }
    AttemptRecord::Retry {
        after,
        status_code,
        error,
    }
}

/// The wait after the `attempts`-th failed attempt: `backoff_base` doubled per attempt, at
/// most `backoff_max`, then a random half of it taken off, so receivers that failed together
/// are not retried together.
pub fn backoff(settings: &WebhookSettings, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(30);
    let full = settings
        .backoff_base
        .saturating_mul(1 << doublings)
        .min(settings.backoff_max);
    full.mul_f64(rand::rng().random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(attempts: u32, started_at: DateTime<Utc>) -> ClaimedDelivery {
        ClaimedDelivery {
            id: 1,
            event_id: uuid::Uuid::nil(),
            endpoint: "e".into(),
            attempts,
            started_at,
            event_type: "asset.created".into(),
            payload: "{}".into(),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_at_most_half_taken_off() {
        let settings = WebhookSettings::default(); // 5s base, 1h max
        for (attempts, full) in [(1, 5), (2, 10), (3, 20), (4, 40), (12, 3600), (40, 3600)] {
            for _ in 0..50 {
                let wait = backoff(&settings, attempts).as_secs_f64();
                assert!(
                    wait >= full as f64 / 2.0 && wait <= full as f64,
                    "attempt {attempts}: {wait}s"
                );
            }
        }
    }

    #[test]
    fn failures_are_retried_until_attempts_or_age_run_out() {
        let settings = WebhookSettings::default();
        let now = Utc::now();
        let rejected = Attempt::Rejected { status_code: 503 };
        assert!(matches!(
            decide(&settings, &delivery(1, now), &rejected, now),
            AttemptRecord::Retry {
                status_code: Some(503),
                ..
            }
        ));
        assert!(matches!(
            decide(&settings, &delivery(20, now), &rejected, now),
            AttemptRecord::Failed { .. }
        ));
        let old = now - chrono::Duration::hours(24);
        assert!(matches!(
            decide(&settings, &delivery(2, old), &rejected, now),
            AttemptRecord::Failed { .. }
        ));
        let delivered = Attempt::Delivered { status_code: 204 };
        assert_eq!(
            decide(&settings, &delivery(20, old), &delivered, now),
            AttemptRecord::Delivered { status_code: 204 }
        );
    }
}
