//! The SQL of the store identity: the id of the object store this database's assets live in
//! (one row, see `storage::identity`).

use uuid::Uuid;

use super::{DbError, PgPool};

/// The recorded store id.
#[derive(Clone)]
pub struct StoreIdentityRepository {
    pool: PgPool,
}

/// Key of the advisory lock under which servers check and record the store one at a time.
const STORE_IDENTITY_LOCK: i64 = 0x5354_4f52_4549_4400; // "STOREID"

impl StoreIdentityRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Runs `work` holding a transaction-scoped advisory lock, so that servers starting
    /// together check and record the store one after another. The marker's create-if-absent
    /// alone does not make them agree on stores whose conditional write is not atomic.
    pub async fn one_at_a_time<T, Fut>(&self, work: impl FnOnce() -> Fut) -> anyhow::Result<T>
    where
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let mut conn = self.pool.get().await.map_err(DbError::from)?;
        let tx = conn.transaction().await.map_err(DbError::from)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&STORE_IDENTITY_LOCK])
            .await
            .map_err(DbError::from)?;
        let result = work().await;
        // Ending the transaction releases the lock (a failed commit rolls back, as a drop would).
        let _ = tx.commit().await;
        result
    }

    /// The id this database records, or `None` when it records none yet.
    pub async fn recorded(&self) -> Result<Option<Uuid>, DbError> {
        let conn = self.pool.get().await?;
        let row = conn
            .query_opt("SELECT store_id FROM store_identity", &[])
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Records `id` unless an id is recorded already, and returns the recorded id: `id`, or
    /// the one another server recorded first.
    pub async fn record_if_absent(&self, id: Uuid) -> Result<Uuid, DbError> {
        let conn = self.pool.get().await?;
        conn.execute(
            "INSERT INTO store_identity (store_id) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&id],
        )
        .await?;
        // A second statement, so it sees a row another server committed while this insert
        // waited on it (READ COMMITTED takes a new snapshot per statement).
        let row = conn
            .query_one("SELECT store_id FROM store_identity", &[])
            .await?;
        Ok(row.get(0))
    }

    /// Records `id`, replacing any recorded id (adopting another store).
    pub async fn replace(&self, id: Uuid) -> Result<(), DbError> {
        let conn = self.pool.get().await?;
        conn.execute(
            "INSERT INTO store_identity (store_id) VALUES ($1) \
             ON CONFLICT (singleton) DO UPDATE SET store_id = EXCLUDED.store_id, recorded_at = now()",
            &[&id],
        )
        .await?;
        Ok(())
    }
}
