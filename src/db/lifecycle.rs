//! The SQL of the sweeper (`crate::lifecycle`): the removal of abandoned uploads (recording
//! their `asset.expired` events, see `events`), a dry run of it, and the orphan scan's check of
//! which stored keys an asset still names. Part of [`AssetRepository`]; every statement is
//! one round trip, its text formatted once.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};

use tokio_postgres::types::{ToSql, Type};

use super::assets::{COLUMNS, asset_from_row};
use super::events::record_events;
use super::{AssetRepository, DbError};
use crate::domain::{Asset, AssetId};
use crate::events::EventType;

/// Key of the advisory lock that keeps two sweepers from working at once.
const SWEEP_LOCK: i64 = 0x5357_4545_5045_5200; // "SWEEPER"

impl AssetRepository {
    /// Removes up to `batch` pending assets whose upload URL expired more than `grace` ago and
    /// returns them, so their objects can be deleted. `None` when another sweeper is at work.
    ///
    /// Records go first: an object left behind by a crash afterwards is found by the orphan
    /// scan, while a record pointing at nothing is never left.
    pub async fn take_expired_pending(
        &self,
        grace: Duration,
        batch: u32,
    ) -> Result<Option<Vec<Asset>>, DbError> {
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        let locked: bool = tx
            .query_typed_one(
                "SELECT pg_try_advisory_xact_lock($1)",
                &[(&SWEEP_LOCK, Type::INT8)],
            )
            .await?
            .try_get(0)?;
        if !locked {
            return Ok(None);
        }
        // Each removed asset records its `asset.expired` in the same statement.
        static PLAIN: LazyLock<String> = LazyLock::new(|| take_expired_sql(false));
        static WITH_EVENTS: LazyLock<String> = LazyLock::new(|| take_expired_sql(true));
        let endpoints = self.endpoints(EventType::Expired);
        let (grace_secs, batch) = (grace.as_secs_f64(), i64::from(batch));
        let params: [(&(dyn ToSql + Sync), Type); 3] = [
            (&grace_secs, Type::FLOAT8),
            (&batch, Type::INT8),
            (endpoints, Type::TEXT_ARRAY),
        ];
        let (sql, params) = if endpoints.is_empty() {
            (&*PLAIN, &params[..2])
        } else {
            (&*WITH_EVENTS, &params[..])
        };
        let rows = tx.query_typed(sql, params).await?;
        let assets = rows
            .iter()
            .map(asset_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Counters of upload tokens that expired: no request can present them any more.
        tx.query_typed(
            "DELETE FROM upload_token_usage WHERE expires_at < now() - make_interval(secs => $1)",
            &[(&grace.as_secs_f64(), Type::FLOAT8)],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(assets))
    }

    /// Up to `limit` pending assets the sweeper would remove now, without removing them, in
    /// expiry order: the first ones, or those after `after` (the expiry and id of the last
    /// asset of the previous page).
    pub async fn expired_pending(
        &self,
        grace: Duration,
        after: Option<(DateTime<Utc>, AssetId)>,
        limit: u32,
    ) -> Result<Vec<Asset>, DbError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM assets \
                 WHERE status = 'pending' AND upload_expires_at < now() - make_interval(secs => $1) \
                     AND ($3::timestamptz IS NULL OR (upload_expires_at, id) > ($3, $4)) \
                 ORDER BY upload_expires_at, id LIMIT $2"
            )
        });
        let (expires, id) = after.unzip();
        let id = id.map(|id| id.as_uuid());
        let conn = self.pool.get().await?;
        let rows = conn
            .query_typed(
                &SQL,
                &[
                    (&grace.as_secs_f64(), Type::FLOAT8),
                    (&i64::from(limit), Type::INT8),
                    (&expires, Type::TIMESTAMPTZ),
                    (&id, Type::UUID),
                ],
            )
            .await?;
        rows.iter().map(asset_from_row).collect()
    }

    /// Which of `storage_keys` in `bucket` belong to an asset.
    pub async fn referenced_keys(
        &self,
        bucket: &str,
        storage_keys: &[String],
    ) -> Result<HashSet<String>, DbError> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query_typed(
                "SELECT storage_key FROM assets WHERE bucket = $1 AND storage_key = ANY($2)",
                &[(&bucket, Type::TEXT), (&storage_keys, Type::TEXT_ARRAY)],
            )
            .await?;
        rows.iter()
            .map(|row| row.try_get(0).map_err(DbError::from))
            .collect()
    }
}

/// The sweeper's removal of a batch of expired pending assets (`$1` the grace in seconds,
/// `$2` the batch size); with `events`, each removed asset also records `asset.expired` for
/// the endpoints in `$3`.
///
/// `= ANY(ARRAY(…))`, not `IN (…)`: the batch is computed first and each row found by its
/// key. With `IN`, the plan cached for a prepared statement (its LIMIT unknown) is a hash
/// join over a sequential scan of the whole table (tests/api/query_plans.rs).
fn take_expired_sql(events: bool) -> String {
    let events = if events {
        record_events("expired", EventType::Expired, 3, "true")
    } else {
        String::new()
    };
    format!(
        "WITH expired AS (DELETE FROM assets WHERE id = ANY(ARRAY( \
             SELECT id FROM assets \
             WHERE status = 'pending' AND upload_expires_at < now() - make_interval(secs => $1) \
             ORDER BY upload_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)) \
         RETURNING {COLUMNS}){events} SELECT {COLUMNS} FROM expired"
    )
}
