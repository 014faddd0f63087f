//! Connections that many requests use at once, for single statements.
//!
//! A pooled connection carries one statement at a time: a request sends it, waits for the
//! answer and hands the connection back, so every statement costs a send and a wake-up on
//! each side. The statements on the hot path (issuing an upload, looking an asset up,
//! completing it) are single statements outside any transaction, so requests can share a few
//! connections instead: tokio-postgres pipelines the statements of every request using one
//! connection, writing those queued together in one send, and Postgres reads them together
//! and answers each in order. Each statement still runs as its own implicit transaction.
//! Transactions, and everything else, keep using the pool (`database.shared_connections`,
//! measured in bench/README.md).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use super::{DbError, PgConnection, PgPool};

/// A fixed set of shared connections, handed out in turn; each is (re)opened on first use
/// after it closed.
pub struct SharedConnections {
    pool: PgPool,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    connect_timeout: Duration,
}

impl std::fmt::Debug for SharedConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedConnections")
            .field("slots", &self.slots.len())
            .field("open", &self.open_count())
            .finish()
    }
}

#[derive(Default)]
struct Slot {
    connection: RwLock<Option<Arc<PgConnection>>>,
    /// Held while opening the slot's connection: one request opens it, the others wait.
    opening: tokio::sync::Mutex<()>,
}

impl Slot {
    /// The slot's connection, unless it has none or its socket closed.
    fn live(&self) -> Option<Arc<PgConnection>> {
        self.connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|connection| !connection.is_closed())
            .cloned()
    }

    fn set(&self, connection: Arc<PgConnection>) {
        *self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(connection);
    }
}

impl SharedConnections {
    /// `count` connections opened through `pool`'s manager but not counted in the pool, with
    /// the pool's connection timeout; `None` when `count` is 0 (every statement then borrows a
    /// pooled connection).
    pub fn new(pool: PgPool, count: usize) -> Option<Self> {
        (count > 0).then(|| Self {
            connect_timeout: pool.config().connection_timeout,
            pool,
            slots: (0..count).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// A connection to send one statement on, shared with other requests. Opening a closed
    /// one waits at most `database.connect_timeout_secs`, as a pool checkout does.
    pub async fn get(&self) -> Result<Arc<PgConnection>, DbError> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[turn];
        if let Some(connection) = slot.live() {
            return Ok(connection);
        }
        tokio::time::timeout(self.connect_timeout, self.open(slot))
            .await
            .map_err(|_| DbError::Unavailable)?
    }

    async fn open(&self, slot: &Slot) -> Result<Arc<PgConnection>, DbError> {
        let _opening = slot.opening.lock().await;
        // Another request may have opened it while this one waited.
        if let Some(connection) = slot.live() {
            return Ok(connection);
        }
        let connection = self.pool.dedicated_connection().await?;
        let connection = Arc::new(connection);
        slot.set(connection.clone());
        Ok(connection)
    }

    /// How many shared connections are open now.
    pub fn open_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.live().is_some())
            .count()
    }
}
