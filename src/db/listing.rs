//! The SQL of the `/api/assets` routes (`http::assets`): an owner's assets listed page by
//! page, and one of them deleted, recording its event (see `events`). Part of
//! [`AssetRepository`]; every statement is one round trip, its text formatted once.

use std::sync::LazyLock;

use tokio_postgres::types::{ToSql, Type};

use super::assets::{COLUMNS, asset_from_row};
use super::events::record_events;
use super::{AssetRepository, DbError};
use crate::domain::{Asset, AssetId, AssetStatus, Owner};
use crate::events::EventType;

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
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM assets \
                 WHERE owner = $1 AND ($2::uuid IS NULL OR id > $2) \
                   AND ($3::text IS NULL OR status = $3) \
                   AND ($4::text IS NULL OR starts_with(object_key, $4)) \
                   AND ($6::uuid IS NULL OR upload_token_id = $6) \
                 ORDER BY id LIMIT $5"
            )
        });
        let after = filter.after.map(|id| id.as_uuid());
        let status = filter.status.map(|s| s.as_str());
        let conn = self.pool.get().await?;
        let rows = conn
            .query_typed(
                &SQL,
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
        static PLAIN: LazyLock<String> = LazyLock::new(|| delete_sql(false));
        static WITH_EVENTS: LazyLock<String> = LazyLock::new(|| delete_sql(true));
        let endpoints = self.endpoints(EventType::Deleted);
        let params: [(&(dyn ToSql + Sync), Type); 3] = [
            (&id.as_uuid(), Type::UUID),
            (&owner.as_str(), Type::TEXT),
            (endpoints, Type::TEXT_ARRAY),
        ];
        let (sql, params) = if endpoints.is_empty() {
            (&*PLAIN, &params[..2])
        } else {
            (&*WITH_EVENTS, &params[..])
        };
        let conn = self.pool.get().await?;
        let row = conn.query_typed_opt(sql, params).await?;
        row.as_ref().map(asset_from_row).transpose()
    }
}

/// The deletion statement; with `events`, it also records `asset.deleted` for the endpoints
/// in `$3`.
fn delete_sql(events: bool) -> String {
    let events = if events {
        record_events("deleted", EventType::Deleted, 3, "true")
    } else {
        String::new()
    };
    format!(
        "WITH deleted AS (DELETE FROM assets WHERE id = $1 AND owner = $2 RETURNING {COLUMNS}){events} \
         SELECT {COLUMNS} FROM deleted"
    )
}
