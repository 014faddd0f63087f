//! The SQL of the outbox: the CTE that records an event in the intake, in the statement of
//! the change it reports (used by `assets`, `listing` and `lifecycle`), and the
//! [`EventRepository`] the dispatcher and the `events` command use to move events out of the
//! intake and to claim, record, list, retry and prune deliveries.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::Type;

use super::{DbError, PgPool};
use crate::events::EventType;

/// A timestamp as RFC 3339 in UTC with microseconds, whatever the session's time zone.
fn rfc3339(expression: &str) -> String {
    format!("to_char(({expression}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

/// A CTE to append (with its leading comma) to a `WITH` whose CTE `source` returns asset
/// columns: for each row of `source` matching `filter` (an expression over `s`), an event of
/// `event_type` in `event_intake`, naming the endpoints in the `text[]` parameter `$param`.
/// [`EventRepository::take_intake`] later moves it into `events` and one delivery per
/// endpoint.
///
/// Callers send this only when some endpoint subscribed to `event_type`, and otherwise the
/// statement as it was without events: even a data-modifying CTE that writes nothing costs
/// each execution the opening and locking of its table (measured in bench/README.md), so no
/// endpoint must mean no cost. The body is `json`, not `jsonb`, and the intake has no index
/// but its key: both measured to matter on the request path.
pub(super) fn record_events(
    source: &str,
    event_type: EventType,
    param: usize,
    filter: &str,
) -> String {
    let kind = event_type.as_str();
    let created_at = rfc3339("s.created_at");
    let completed_at = rfc3339("s.completed_at");
    let now = rfc3339("now()");
    format!(
        ", {source}_event AS ( \
             INSERT INTO event_intake (type, asset_id, endpoints, payload) \
             SELECT '{kind}', s.id, ${param}::text[], json_build_object( \
                 'type', '{kind}', 'timestamp', {now}, 'data', json_build_object( \
                     'asset_id', s.id, 'owner', s.owner, 'object_key', s.object_key, \
                     'bucket', s.bucket, 'storage_key', s.storage_key, \
                     'size', coalesce(s.stored_size, s.content_length), \
                     'content_type', s.content_type, 'checksum_sha256', s.checksum_sha256, \
                     'composite_sha256', s.composite_sha256, \
                     'created_at', {created_at}, 'completed_at', {completed_at})) \
             FROM {source} s WHERE {filter})"
    )
}

/// A delivery claimed for one attempt, with what it sends.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub event_id: uuid::Uuid,
    pub endpoint: String,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// Start of the `webhooks.max_age` window.
    pub started_at: DateTime<Utc>,
    pub event_type: String,
    /// The JSON body, the same bytes on every attempt.
    pub payload: String,
}

/// How an attempt ended, as recorded on its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptRecord {
    /// 2xx: done.
    Delivered { status_code: u16 },
    /// Tried again after `after`.
    Retry {
        after: Duration,
        status_code: Option<u16>,
        error: String,
    },
    /// Given up (attempts or age exhausted); the row is kept.
    Failed {
        status_code: Option<u16>,
        error: String,
    },
}

/// A delivery as the `events` command shows it.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: uuid::Uuid,
    pub event_type: String,
    pub asset_id: uuid::Uuid,
    pub endpoint: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub event_created_at: DateTime<Utc>,
}

/// Deliveries waiting and how late the earliest due one is, for the gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueStats {
    pub pending: i64,
    /// Seconds since the earliest due delivery became due (0 when none is due).
    pub oldest_due_secs: f64,
}

/// Which deliveries `events retry` makes due again.
#[derive(Debug, Clone, Copy)]
pub enum RetrySelection {
    /// This one, whatever its status.
    One(i64),
    /// Every failed one.
    AllFailed,
}

/// Deliveries in Postgres.
#[derive(Clone)]
pub struct EventRepository {
    pool: PgPool,
}

impl EventRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Moves up to `batch` events from the intake the request path writes into `events`, with
    /// one due delivery per endpoint named when the change committed, oldest first; returns how
    /// many. One statement, so an event is either still in the intake or fully moved, and
    /// `SKIP LOCKED`, so replicas moving at once take different rows. A delivery's `max_age`
    /// window starts at the change, not at the move.
    pub async fn take_intake(&self, batch: u32) -> Result<u64, DbError> {
        let conn = self.pool.get().await?;
        // `taken` calls a volatile function and is referenced twice, so it is computed once:
        // one id per event.
        let row = conn
            .query_typed_one(
                "WITH moved AS ( \
                     DELETE FROM event_intake WHERE id = ANY(ARRAY( \
                         SELECT id FROM event_intake ORDER BY id LIMIT $1 \
                         FOR UPDATE SKIP LOCKED)) \
                     RETURNING id, type, asset_id, endpoints, payload, created_at), \
                 taken AS (SELECT gen_random_uuid() AS event_id, * FROM moved), \
                 inserted AS ( \
                     INSERT INTO events (id, type, asset_id, payload, created_at) \
                     SELECT event_id, type, asset_id, payload::jsonb, created_at FROM taken \
                     RETURNING id), \
                 deliveries AS ( \
                     INSERT INTO event_deliveries (event_id, endpoint, next_attempt_at, started_at) \
                     SELECT t.event_id, e.endpoint, now(), t.created_at \
                     FROM taken t CROSS JOIN unnest(t.endpoints) AS e(endpoint)) \
                 SELECT count(*) FROM inserted",
                &[(&i64::from(batch), Type::INT8)],
            )
            .await?;
        let moved: i64 = row.try_get(0)?;
        Ok(u64::try_from(moved).unwrap_or(0))
    }

    /// Claims up to `batch` due deliveries to `endpoints` for one attempt each: counts the
    /// attempt and moves them `lease` into the future, so no other replica takes them while
    /// this one tries, and a crashed replica's claims fall due again.
    pub async fn claim(
        &self,
        endpoints: &[String],
        batch: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedDelivery>, DbError> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query_typed(
                "WITH due AS ( \
                     SELECT id FROM event_deliveries \
                     WHERE status = 'pending' AND next_attempt_at <= now() AND endpoint = ANY($1) \
                     ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 UPDATE event_deliveries d SET attempts = d.attempts + 1, last_attempt_at = now(), \
                     next_attempt_at = now() + make_interval(secs => $3) \
                 FROM due, events e WHERE d.id = due.id AND e.id = d.event_id \
                 RETURNING d.id, d.event_id, d.endpoint, d.attempts, d.started_at, e.type, \
                     e.payload::text AS payload",
                &[
                    (&endpoints, Type::TEXT_ARRAY),
                    (&i64::from(batch), Type::INT8),
                    (&lease.as_secs_f64(), Type::FLOAT8),
                ],
            )
            .await?;
        rows.iter().map(claimed_from_row).collect()
    }

    /// Records how the attempt `attempts` of delivery `id` ended. Does nothing when the
    /// delivery moved on meanwhile (claimed again after its lease, retried by hand, given up).
    pub async fn record(
        &self,
        id: i64,
        attempts: u32,
        outcome: &AttemptRecord,
    ) -> Result<(), DbError> {
        let (status, after, code, error) = match outcome {
            AttemptRecord::Delivered { status_code } => {
                ("delivered", Duration::ZERO, Some(*status_code), None)
            }
            AttemptRecord::Retry {
                after,
                status_code,
                error,
            } => ("pending", *after, *status_code, Some(error.as_str())),
            AttemptRecord::Failed { status_code, error } => {
                ("failed", Duration::ZERO, *status_code, Some(error.as_str()))
            }
        };
        let code = code.map(i32::from);
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        let conn = self.pool.get().await?;
        conn.query_typed(
            "UPDATE event_deliveries SET status = $3, \
                 next_attempt_at = CASE WHEN $3 = 'pending' \
                     THEN now() + make_interval(secs => $4) ELSE next_attempt_at END, \
                 finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END, \
                 last_status_code = $5, last_error = $6 \
             WHERE id = $1 AND attempts = $2 AND status = 'pending'",
            &[
                (&id, Type::INT8),
                (&attempts, Type::INT4),
                (&status, Type::TEXT),
                (&after.as_secs_f64(), Type::FLOAT8),
                (&code, Type::INT4),
                (&error, Type::TEXT),
            ],
        )
        .await?;
        Ok(())
    }

    /// Marks failed the pending deliveries whose `max_age` window closed, also those to
    /// endpoints no replica knows any more. Returns how many.
    pub async fn give_up_overdue(&self, max_age: Duration) -> Result<u64, DbError> {
        let conn = self.pool.get().await?;
        Ok(conn
            .execute(
                "UPDATE event_deliveries SET status = 'failed', finished_at = now(), \
                     last_error = coalesce(last_error || '; ', '') || 'gave up: older than webhooks.max_age' \
                 WHERE status = 'pending' AND started_at < now() - make_interval(secs => $1::float8)",
                &[&max_age.as_secs_f64()],
            )
            .await?)
    }

    /// Removes up to `limit` events older than `retention` whose deliveries all finished
    /// more than `retention` ago, with those deliveries. Returns how many events.
    pub async fn prune(&self, retention: Duration, limit: u32) -> Result<u64, DbError> {
        let conn = self.pool.get().await?;
        Ok(conn
            .execute(
                "DELETE FROM events WHERE id IN ( \
                     SELECT e.id FROM events e \
                     WHERE e.created_at < now() - make_interval(secs => $1::float8) \
                       AND NOT EXISTS (SELECT 1 FROM event_deliveries d WHERE d.event_id = e.id \
                           AND (d.status = 'pending' \
                                OR d.finished_at >= now() - make_interval(secs => $1::float8))) \
                     LIMIT $2::bigint)",
                &[&retention.as_secs_f64(), &i64::from(limit)],
            )
            .await?)
    }

    /// How many deliveries wait (those still in the intake included), and how late the
    /// earliest due one is.
    pub async fn queue_stats(&self) -> Result<QueueStats, DbError> {
        let conn = self.pool.get().await?;
        let row = conn
            .query_typed_one(
                "WITH due AS ( \
                     SELECT count(*) AS pending, \
                         min(next_attempt_at) FILTER (WHERE next_attempt_at <= now()) AS oldest \
                     FROM event_deliveries WHERE status = 'pending'), \
                 intake AS ( \
                     SELECT coalesce(sum(cardinality(endpoints)), 0) AS pending, \
                         min(created_at) AS oldest \
                     FROM event_intake) \
                 SELECT (due.pending + intake.pending)::bigint AS pending, \
                     coalesce(extract(epoch FROM now() - \
                         least(due.oldest, intake.oldest)), 0)::float8 AS oldest \
                 FROM due, intake",
                &[],
            )
            .await?;
        Ok(QueueStats {
            pending: row.try_get("pending")?,
            oldest_due_secs: row.try_get("oldest")?,
        })
    }

    /// The latest `limit` deliveries (only failed ones with `failed_only`), newest first.
    pub async fn list(&self, failed_only: bool, limit: u32) -> Result<Vec<DeliveryRow>, DbError> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query_typed(
                "SELECT d.id, d.event_id, e.type, e.asset_id, d.endpoint, d.status, d.attempts, \
                     d.next_attempt_at, d.last_status_code, d.last_error, e.created_at \
                 FROM event_deliveries d JOIN events e ON e.id = d.event_id \
                 WHERE NOT $1 OR d.status = 'failed' ORDER BY d.id DESC LIMIT $2",
                &[(&failed_only, Type::BOOL), (&i64::from(limit), Type::INT8)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DeliveryRow {
                    id: row.try_get(0)?,
                    event_id: row.try_get(1)?,
                    event_type: row.try_get(2)?,
                    asset_id: row.try_get(3)?,
                    endpoint: row.try_get(4)?,
                    status: row.try_get(5)?,
                    attempts: row.try_get(6)?,
                    next_attempt_at: row.try_get(7)?,
                    last_status_code: row.try_get(8)?,
                    last_error: row.try_get(9)?,
                    event_created_at: row.try_get(10)?,
                })
            })
            .collect()
    }

    /// Makes the selected deliveries due now with a fresh count of attempts and a fresh
    /// `max_age` window (the same event, so the same `webhook-id`). Returns how many.
    pub async fn retry(&self, selection: RetrySelection) -> Result<u64, DbError> {
        let id = match selection {
            RetrySelection::One(id) => Some(id),
            RetrySelection::AllFailed => None,
        };
        let conn = self.pool.get().await?;
        Ok(conn
            .execute(
                "UPDATE event_deliveries SET status = 'pending', attempts = 0, \
                     next_attempt_at = now(), started_at = now(), finished_at = NULL \
                 WHERE CASE WHEN $1::bigint IS NULL THEN status = 'failed' ELSE id = $1 END",
                &[&id],
            )
            .await?)
    }
}

fn claimed_from_row(row: &Row) -> Result<ClaimedDelivery, DbError> {
    let attempts: i32 = row.try_get("attempts")?;
    Ok(ClaimedDelivery {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        endpoint: row.try_get("endpoint")?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        started_at: row.try_get("started_at")?,
        event_type: row.try_get("type")?,
        payload: row.try_get("payload")?,
    })
}
