//! The SQL of an asset's later life: listing, deletion, and the sweeper's removal of
//! abandoned uploads (both recording their events, see `events`). Part of
//! [`AssetRepository`]; every statement is one round trip.

use std::collections::HashSet;
use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};

use super::assets::{COLUMNS, asset_from_row};
use super::events::record_events;
use super::{AssetRepository, DbError};
use crate::domain::{Asset, AssetId, AssetStatus, Owner};
use crate::events::EventType;

/// Key of the advisory lock that keeps two sweepers from working at once.
const SWEEP_LOCK: i64 = 0x5357_4545_5045_5200; // "SWEEPER"

/// Which of an owner's assets to list.
#[derive(Debug, Clone, Default)]
pub struct AssetFilter {
    pub status: Option<AssetStatus>,
    /// Only object keys starting with this.
    pub prefix: Option<String>,
    /// Only assets after this one (the previous page's last).
    pub after: Option<AssetId>,
    /// Only assets created through this delegated upload token.
    pub upload_token: Option<uuid::Uuid>,
}

impl AssetRepository {
    /// Up to `limit` of the owner's assets matching `filter`, oldest first (ids are UUIDv7).
    pub async fn list(
        &self,
        owner: &Owner,
        filter: &AssetFilter,
        limit: u32,
    ) -> Result<Vec<Asset>, DbError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM assets \
             WHERE owner = $1 AND ($2::uuid IS NULL OR id > $2) \
               AND ($3::text IS NULL OR status = $3) \
               AND ($4::text IS NULL OR starts_with(object_key, $4)) \
               AND ($6::uuid IS NULL OR upload_token_id = $6) \
             ORDER BY id LIMIT $5"
        );
        let after = filter.after.map(|id| id.as_uuid());
        let status = filter.status.map(|s| s.as_str());
        let conn = self.pool.get().await?;
        let rows = conn
            .query_typed(
                &sql,
                &[
                    (&owner.as_str(), Type::TEXT),
                    (&after, Type::UUID),
                    (&status, Type::TEXT),
                    (&filter.prefix, Type::TEXT),
                    (&i64::from(limit), Type::INT8),
                    (&filter.upload_token, Type::UUID),
                ],
            )
            .await?;
        rows.iter().map(asset_from_row).collect()
    }

    /// Deletes the owner's asset record, recording `asset.deleted` in the same statement;
    /// returns it, or `None` when there was none.
    pub async fn delete(&self, owner: &Owner, id: AssetId) -> Result<Option<Asset>, DbError> {
        let endpoints = self.endpoints(EventType::Deleted);
        let events = if endpoints.is_empty() {
            String::new()
        } else {
            record_events("deleted", EventType::Deleted, 3, "true")
        };
        let sql = format!(
            "WITH deleted AS (DELETE FROM assets WHERE id = $1 AND owner = $2 RETURNING {COLUMNS}){events} \
             SELECT {COLUMNS} FROM deleted"
        );
        let params: [(&(dyn ToSql + Sync), Type); 3] = [
            (&id.as_uuid(), Type::UUID),
            (&owner.as_str(), Type::TEXT),
            (endpoints, Type::TEXT_ARRAY),
        ];
        let params = if endpoints.is_empty() {
            &params[..2]
        } else {
            &params[..]
        };
        let conn = self.pool.get().await?;
        let row = conn.query_typed_opt(&sql, params).await?;
        row.as_ref().map(asset_from_row).transpose()
    }

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
        // `= ANY(ARRAY(…))`, not `IN (…)`: the batch is computed first and each row found by
        // its key. With `IN`, the plan cached for a prepared statement (its LIMIT unknown)
        // is a hash join over a sequential scan of the whole table (tests/api/query_plans.rs).
        let endpoints = self.endpoints(EventType::Expired);
        let events = if endpoints.is_empty() {
            String::new()
        } else {
            record_events("expired", EventType::Expired, 3, "true")
        };
        let sql = format!(
            "WITH expired AS (DELETE FROM assets WHERE id = ANY(ARRAY( \
                 SELECT id FROM assets \
                 WHERE status = 'pending' AND upload_expires_at < now() - make_interval(secs => $1) \
                 ORDER BY upload_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)) \
             RETURNING {COLUMNS}){events} SELECT {COLUMNS} FROM expired"
        );
        let (grace_secs, batch) = (grace.as_secs_f64(), i64::from(batch));
        let params: [(&(dyn ToSql + Sync), Type); 3] = [
            (&grace_secs, Type::FLOAT8),
            (&batch, Type::INT8),
            (endpoints, Type::TEXT_ARRAY),
        ];
        let params = if endpoints.is_empty() {
            &params[..2]
        } else {
            &params[..]
        };
        let rows = tx.query_typed(&sql, params).await?;
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

    /// Up to `limit` pending assets the sweeper would remove now, without removing them.
    pub async fn expired_pending(
        &self,
        grace: Duration,
        limit: u32,
    ) -> Result<Vec<Asset>, DbError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM assets \
             WHERE status = 'pending' AND upload_expires_at < now() - make_interval(secs => $1) \
             ORDER BY upload_expires_at LIMIT $2"
        );
        let conn = self.pool.get().await?;
        let rows = conn
            .query_typed(
                &sql,
                &[
                    (&grace.as_secs_f64(), Type::FLOAT8),
                    (&i64::from(limit), Type::INT8),
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
