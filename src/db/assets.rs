//! Every SQL statement about assets, with typed rows in and out.
//!
//! Each public method is one round trip: statements are sent with their parameter types
//! (`query_typed`), and the pooled connection prepares each one once (see `connection`).
//! Single statements outside a transaction go over the shared connections when there are
//! any (see `shared`). The statements on the request path are formatted once, not per call.

use std::ops::Deref;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

use super::connection::TypedQueries;
use super::events::record_events;
use super::shared::SharedConnections;
use super::{DbError, PgConnection, PgConnectionManager, PgPool};
use crate::domain::{
    Asset, AssetId, AssetStatus, CompositeChecksum, ContentType, MultipartUpload, ObjectKey,
    OutOfScope, Owner, Sha256Checksum, UploadScope,
};
use crate::events::{EventType, Subscriptions};

pub(super) const COLUMNS: &str = "id, owner, object_key, storage_key, bucket, status, content_type, \
    content_length, checksum_sha256, stored_size, created_at, upload_expires_at, completed_at, \
    multipart_upload_id, part_size, part_checksums, upload_token_id, composite_sha256, \
    composite_part_size";

/// What a client declared when asking to upload.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// Id used when this creates a new asset; ignored when a pending one is re-issued.
    pub id: AssetId,
    pub owner: Owner,
    pub object_key: ObjectKey,
    /// Storage key for a new asset (built from `id`).
    pub storage_key: String,
    pub bucket: String,
    pub content_type: Option<ContentType>,
    pub content_length: Option<u64>,
    pub checksum_sha256: Option<Sha256Checksum>,
    pub upload_expires_at: DateTime<Utc>,
    /// The scope of the delegated upload token issuing it, if one is.
    pub scope: Option<UploadScope>,
}

/// The result of [`AssetRepository::issue_upload`].
#[derive(Debug)]
pub enum IssueOutcome {
    /// No asset had this key: a new pending asset was created.
    Created(Asset),
    /// A pending asset had this key: its declared values and expiry were replaced.
    Reissued(Asset),
    /// A complete asset has this key; nothing changed.
    AlreadyComplete,
    /// The owner's quota does not allow this upload; nothing changed.
    QuotaExceeded(QuotaExceeded),
    /// The upload token may not issue this upload (its other asset, or no uploads left).
    OutOfScope(OutOfScope),
}

/// Per-owner quotas checked when an upload is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max_pending_uploads: Option<u64>,
    pub max_total_bytes: Option<u64>,
    /// What a pending upload without a declared length may grow to.
    pub max_size: u64,
}

/// Which quota an upload would exceed, its limit and the owner's use of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "The {limit} quota of {allowed} would be exceeded: {current} in use, {requested} more requested."
)]
pub struct QuotaExceeded {
    pub limit: &'static str,
    pub allowed: u64,
    pub current: u64,
    pub requested: u64,
}

/// Asset records in Postgres, and the events their changes emit (see `db::events`).
#[derive(Clone)]
pub struct AssetRepository {
    pub(super) pool: PgPool,
    shared: Option<Arc<SharedConnections>>,
    /// The endpoints each event type fans out to; none unless webhooks are configured.
    pub(super) subscriptions: Arc<Subscriptions>,
}

/// A connection for one statement: borrowed from the pool, or shared with other requests.
#[expect(
    clippy::large_enum_variant,
    reason = "lives on the stack for one statement; boxing would allocate per statement"
)]
enum StatementConnection<'a> {
    Pooled(bb8::PooledConnection<'a, PgConnectionManager>),
    Shared(Arc<PgConnection>),
}

impl Deref for StatementConnection<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match self {
            Self::Pooled(connection) => connection,
            Self::Shared(connection) => connection,
        }
    }
}

impl AssetRepository {
    /// Every statement borrows a connection from `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            shared: None,
            subscriptions: Arc::default(),
        }
    }

    /// Changes record events for the endpoints of `subscriptions` (webhooks).
    pub fn with_subscriptions(mut self, subscriptions: Subscriptions) -> Self {
        self.subscriptions = Arc::new(subscriptions);
        self
    }

    /// The endpoint names events of `event_type` go to (a `text[]` parameter).
    pub(super) fn endpoints(&self, event_type: EventType) -> &Vec<String> {
        self.subscriptions.endpoints(event_type)
    }

    /// Single statements outside transactions go over `shared` instead of the pool.
    pub fn with_shared_connections(mut self, shared: Option<Arc<SharedConnections>>) -> Self {
        self.shared = shared;
        self
    }

    /// A connection to run one statement on, outside any transaction.
    async fn statement_connection(&self) -> Result<StatementConnection<'_>, DbError> {
        Ok(match &self.shared {
            Some(shared) => StatementConnection::Shared(shared.get().await?),
            None => StatementConnection::Pooled(self.pool.get().await?),
        })
    }

    /// Creates a pending asset, or re-issues the owner's pending asset with the same key.
    ///
    /// Without quotas or an upload token this is one statement: concurrent requests for one
    /// new key yield exactly one asset. Otherwise the owner's uploads are serialised by a
    /// transaction-scoped advisory lock, so concurrent requests cannot overshoot a quota or a
    /// token's `max_uploads`.
    pub async fn issue_upload(
        &self,
        new: &NewUpload,
        quota: Quota,
    ) -> Result<IssueOutcome, DbError> {
        let unlimited = quota.max_pending_uploads.is_none() && quota.max_total_bytes.is_none();
        if unlimited && new.scope.is_none() {
            return upsert(
                &*self.statement_connection().await?,
                new,
                self.endpoints(EventType::Created),
            )
            .await;
        }
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        tx.query_typed(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[(&new.owner.as_str(), Type::TEXT)],
        )
        .await?;
        if let Some(scope) = &new.scope
            && let Some(refused) = count_token_upload(&tx, new, scope).await?
        {
            return Ok(refused);
        }
        if unlimited {
            let outcome = upsert(&tx, new, self.endpoints(EventType::Created)).await?;
            tx.commit().await?;
            return Ok(outcome);
        }
        let usage = tx
            .query_typed_one(
                "SELECT \
                     count(*) FILTER (WHERE status = 'pending' AND object_key <> $2) AS pending, \
                     coalesce(sum(CASE WHEN status = 'complete' THEN coalesce(stored_size, content_length, 0) \
                                       ELSE coalesce(content_length, $3) END) \
                              FILTER (WHERE NOT (status = 'pending' AND object_key = $2)), 0)::bigint AS bytes, \
                     coalesce(bool_or(status = 'complete' AND object_key = $2), false) AS key_complete \
                 FROM assets WHERE owner = $1",
                &[
                    (&new.owner.as_str(), Type::TEXT),
                    (&new.object_key.as_str(), Type::TEXT),
                    (&to_i64(quota.max_size), Type::INT8),
                ],
            )
            .await?;
        if usage.try_get::<_, bool>("key_complete")? {
            return Ok(IssueOutcome::AlreadyComplete);
        }
        let pending = u64::try_from(usage.try_get::<_, i64>("pending")?).unwrap_or(0);
        let bytes = u64::try_from(usage.try_get::<_, i64>("bytes")?).unwrap_or(0);
        if let Some(exceeded) = check_quota(
            quota,
            pending,
            bytes,
            new.content_length.unwrap_or(quota.max_size),
        ) {
            return Ok(IssueOutcome::QuotaExceeded(exceeded));
        }
        let outcome = upsert(&tx, new, self.endpoints(EventType::Created)).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// The owner's asset with this id, if any.
    pub async fn find(&self, owner: &Owner, id: AssetId) -> Result<Option<Asset>, DbError> {
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {COLUMNS} FROM assets WHERE id = $1 AND owner = $2"));
        let conn = self.statement_connection().await?;
        let row = conn
            .query_typed_opt(
                &SQL,
                &[(&id.as_uuid(), Type::UUID), (&owner.as_str(), Type::TEXT)],
            )
            .await?;
        row.as_ref().map(asset_from_row).transpose()
    }

    /// Marks a pending asset complete with the size found in storage (and, for parts declared
    /// with their SHA-256, their composite checksum; the declarations are dropped). Returns
    /// the asset as it now is, or `None` when the owner has no such asset. Completing twice
    /// changes nothing.
    ///
    /// The `asset.completed` event is written by this same statement, only when it is the one
    /// that completed the asset: every caller that completes an asset emits it, and a
    /// completion that did not happen (a failed verification never gets here) emits nothing.
    pub async fn mark_complete(
        &self,
        owner: &Owner,
        id: AssetId,
        stored_size: u64,
        composite: Option<&CompositeChecksum>,
    ) -> Result<Option<Asset>, DbError> {
        // [events][part declarations to drop]
        static SQL: LazyLock<[[String; 2]; 2]> = LazyLock::new(|| {
            [false, true].map(|events| [false, true].map(|parts| complete_sql(events, parts)))
        });
        let stored_size = to_i64(stored_size);
        let composite_sha256 = composite.map(|c| c.sha256.as_str());
        let composite_part_size = composite.map(|c| to_i64(c.part_size));
        let endpoints = self.endpoints(EventType::Completed);
        let params: [(&(dyn ToSql + Sync), Type); 6] = [
            (&id.as_uuid(), Type::UUID),
            (&owner.as_str(), Type::TEXT),
            (&stored_size, Type::INT8),
            (&composite_sha256, Type::TEXT),
            (&composite_part_size, Type::INT8),
            (endpoints, Type::TEXT_ARRAY),
        ];
        let events = !endpoints.is_empty();
        // Only parts declared with their checksums left declarations (and so a composite).
        let sql = &SQL[usize::from(events)][usize::from(composite.is_some())];
        let params = if events { &params[..] } else { &params[..5] };
        let conn = self.statement_connection().await?;
        let row = conn.query_typed_opt(sql, params).await?;
        row.as_ref().map(asset_from_row).transpose()
    }
}

/// The completion statement; with `events`, it also records `asset.completed` (parameter
/// `$6`, the endpoints) when it is the call that completed the asset, and with `parts`, it
/// drops the asset's part declarations (a CTE that deletes nothing still costs every
/// execution its table's opening and locking, so only uploads that declared parts pay it).
/// The CTE returns the row whether or not this call was the one that completed it.
fn complete_sql(events: bool, parts: bool) -> String {
    let events = if events {
        record_events("completed", EventType::Completed, 6, "true")
    } else {
        String::new()
    };
    let declarations = if parts {
        ", declarations AS ( \
             DELETE FROM upload_parts \
             WHERE asset_id = $1 AND EXISTS (SELECT 1 FROM completed))"
    } else {
        ""
    };
    format!(
        "WITH completed AS ( \
             UPDATE assets SET status = 'complete', completed_at = now(), stored_size = $3, \
                 multipart_upload_id = NULL, part_size = NULL, part_checksums = false, \
                 composite_sha256 = $4, composite_part_size = $5 \
             WHERE id = $1 AND owner = $2 AND status = 'pending' \
             RETURNING {COLUMNS}){declarations}{events} \
         SELECT {COLUMNS} FROM completed \
         UNION ALL \
         SELECT {COLUMNS} FROM assets WHERE id = $1 AND owner = $2 AND NOT EXISTS (SELECT 1 FROM completed)"
    )
}

/// For an upload through a delegated token: refuses a key held by an asset the token did not
/// create, and counts a new upload against the token's `max_uploads` (a re-issue of its own
/// pending asset is not counted). `None` when the upload may go ahead.
async fn count_token_upload(
    tx: &tokio_postgres::Transaction<'_>,
    new: &NewUpload,
    scope: &UploadScope,
) -> Result<Option<IssueOutcome>, DbError> {
    let existing = tx
        .query_typed_opt(
            "SELECT status, upload_token_id FROM assets WHERE owner = $1 AND object_key = $2",
            &[
                (&new.owner.as_str(), Type::TEXT),
                (&new.object_key.as_str(), Type::TEXT),
            ],
        )
        .await?;
    if let Some(row) = existing {
        let status: String = row.try_get("status")?;
        let token: Option<uuid::Uuid> = row.try_get("upload_token_id")?;
        return Ok(if status == AssetStatus::Complete.as_str() {
            Some(IssueOutcome::AlreadyComplete)
        } else if token != Some(scope.token_id) {
            Some(IssueOutcome::OutOfScope(OutOfScope(
                "this object_key belongs to an asset this upload token did not create".into(),
            )))
        } else {
            None
        });
    }
    let Some(max) = scope.max_uploads else {
        return Ok(None);
    };
    let max = i32::try_from(max).unwrap_or(i32::MAX);
    let counted = tx
        .query_typed_opt(
            "INSERT INTO upload_token_usage (token_id, issued, expires_at) VALUES ($1, 1, $3) \
             ON CONFLICT (token_id) DO UPDATE SET issued = upload_token_usage.issued + 1 \
             WHERE upload_token_usage.issued < $2 \
             RETURNING issued",
            &[
                (&scope.token_id, Type::UUID),
                (&max, Type::INT4),
                (&scope.expires_at, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(counted.is_none().then(|| {
        IssueOutcome::OutOfScope(OutOfScope(format!(
            "this upload token's {max} upload(s) are used up"
        )))
    }))
}

/// The insert-or-re-issue statement; a new asset records `asset.created` for `endpoints`
/// in the same statement. A re-issue records nothing: the asset already exists, and its
/// declared values are only promises until completion reports what was stored.
async fn upsert(
    client: &impl TypedQueries,
    new: &NewUpload,
    endpoints: &Vec<String>,
) -> Result<IssueOutcome, DbError> {
    static PLAIN: LazyLock<String> = LazyLock::new(|| upsert_sql(false));
    static WITH_EVENTS: LazyLock<String> = LazyLock::new(|| upsert_sql(true));
    let content_length = new.content_length.map(to_i64);
    let token = new.scope.as_ref().map(|scope| scope.token_id);
    let params: [(&(dyn ToSql + Sync), Type); 11] = [
        (&new.id.as_uuid(), Type::UUID),
        (&new.owner.as_str(), Type::TEXT),
        (&new.object_key.as_str(), Type::TEXT),
        (&new.storage_key, Type::TEXT),
        (&new.bucket, Type::TEXT),
        (
            &new.content_type.as_ref().map(ContentType::as_str),
            Type::TEXT,
        ),
        (&content_length, Type::INT8),
        (
            &new.checksum_sha256.as_ref().map(Sha256Checksum::as_str),
            Type::TEXT,
        ),
        (&new.upload_expires_at, Type::TIMESTAMPTZ),
        (&token, Type::UUID),
        (endpoints, Type::TEXT_ARRAY),
    ];
    let (sql, params) = if endpoints.is_empty() {
        (&*PLAIN, &params[..10])
    } else {
        (&*WITH_EVENTS, &params[..])
    };
    let Some(row) = client.query_typed_opt(sql, params).await? else {
        return Ok(IssueOutcome::AlreadyComplete);
    };
    let inserted: bool = row.try_get("inserted")?;
    let asset = asset_from_row(&row)?;
    Ok(if inserted {
        IssueOutcome::Created(asset)
    } else {
        IssueOutcome::Reissued(asset)
    })
}

/// The insert-or-re-issue statement; with `events`, a new asset also records
/// `asset.created` for the endpoints in `$11`.
fn upsert_sql(events: bool) -> String {
    let insert = format!(
        "INSERT INTO assets (id, owner, object_key, storage_key, bucket, status, content_type, \
             content_length, checksum_sha256, upload_expires_at, upload_token_id) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10) \
         ON CONFLICT (owner, object_key) DO UPDATE SET \
             content_type = EXCLUDED.content_type, \
             content_length = EXCLUDED.content_length, \
             checksum_sha256 = EXCLUDED.checksum_sha256, \
             upload_expires_at = EXCLUDED.upload_expires_at \
         WHERE assets.status = 'pending' \
         RETURNING {COLUMNS}, (xmax = 0) AS inserted"
    );
    if !events {
        return insert;
    }
    let events = record_events("issued", EventType::Created, 11, "s.inserted");
    format!("WITH issued AS ({insert}){events} SELECT * FROM issued")
}

/// The quota `requested` more bytes (and one more pending upload) would exceed, if any.
fn check_quota(quota: Quota, pending: u64, bytes: u64, requested: u64) -> Option<QuotaExceeded> {
    if let Some(allowed) = quota.max_pending_uploads
        && pending + 1 > allowed
    {
        return Some(QuotaExceeded {
            limit: "max_pending_uploads",
            allowed,
            current: pending,
            requested: 1,
        });
    }
    if let Some(allowed) = quota.max_total_bytes
        && bytes.saturating_add(requested) > allowed
    {
        return Some(QuotaExceeded {
            limit: "max_total_bytes",
            allowed,
            current: bytes,
            requested,
        });
    }
    None
}

pub(super) fn to_i64(value: u64) -> i64 {
    // Sizes are capped by uploads.max_size, which configuration keeps within i64.
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(super) fn asset_from_row(row: &Row) -> Result<Asset, DbError> {
    let corrupt = |what: &str| DbError::Corrupt(what.to_owned());
    let object_key: String = row.try_get("object_key")?;
    let status: String = row.try_get("status")?;
    let content_type: Option<String> = row.try_get("content_type")?;
    let content_length: Option<i64> = row.try_get("content_length")?;
    let checksum: Option<String> = row.try_get("checksum_sha256")?;
    let stored_size: Option<i64> = row.try_get("stored_size")?;
    let owner: String = row.try_get("owner")?;
    Ok(Asset {
        id: AssetId::from(row.try_get::<_, uuid::Uuid>("id")?),
        owner: Owner::new(owner),
        object_key: ObjectKey::parse(&object_key).map_err(|_| corrupt("object_key"))?,
        storage_key: row.try_get("storage_key")?,
        bucket: row.try_get("bucket")?,
        status: match status.as_str() {
            "pending" => AssetStatus::Pending,
            "complete" => AssetStatus::Complete,
            _ => return Err(corrupt("status")),
        },
        content_type: content_type
            .map(|v| ContentType::parse(&v).map_err(|_| corrupt("content_type")))
            .transpose()?,
        content_length: content_length
            .map(|v| u64::try_from(v).map_err(|_| corrupt("content_length")))
            .transpose()?,
        checksum_sha256: checksum
            .map(|v| Sha256Checksum::parse(&v).map_err(|_| corrupt("checksum_sha256")))
            .transpose()?,
        stored_size: stored_size
            .map(|v| u64::try_from(v).map_err(|_| corrupt("stored_size")))
            .transpose()?,
        created_at: row.try_get("created_at")?,
        upload_expires_at: row.try_get("upload_expires_at")?,
        completed_at: row.try_get("completed_at")?,
        multipart: match (
            row.try_get::<_, Option<String>>("multipart_upload_id")?,
            row.try_get::<_, Option<i64>>("part_size")?,
        ) {
            (Some(upload_id), Some(part_size)) => Some(MultipartUpload {
                upload_id,
                part_size: u64::try_from(part_size).map_err(|_| corrupt("part_size"))?,
                part_checksums: row.try_get("part_checksums")?,
            }),
            _ => None,
        },
        composite: match (
            row.try_get::<_, Option<String>>("composite_sha256")?,
            row.try_get::<_, Option<i64>>("composite_part_size")?,
        ) {
            (Some(sha256), Some(part_size)) => Some(CompositeChecksum {
                sha256,
                part_size: u64::try_from(part_size).map_err(|_| corrupt("composite_part_size"))?,
            }),
            _ => None,
        },
        upload_token: row.try_get("upload_token_id")?,
    })
}
