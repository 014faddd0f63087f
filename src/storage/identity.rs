//! Store identity: the database records the id of the store its assets live in, and the store
//! holds the same id in its marker (`storage::marker`). A server attached to another store (a
//! local root relative to another working directory, an empty volume, another bucket or key
//! prefix) would sign URLs into it and answer complete assets with URLs that 404; instead it
//! refuses to become ready.
//!
//! The rules, in [`StoreGuard::verify`]: a database that records no store adopts the one it
//! is pointed at (writing the marker if the store has none); otherwise the marker must hold
//! the recorded id, unless `storage.adopt_store` re-records the database to this store.
//! Concurrent starts agree: the marker is created only if absent, the id recorded only if
//! absent, and each server then reads back what won.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, anyhow};
use uuid::Uuid;

use super::Storage;
use super::marker::{MarkerState, StoreMarker, marker_contents};
use crate::db::PgPool;
use crate::db::store_identity::StoreIdentityRepository;

/// Whether the server may use its store, as last checked. Read on every API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreStatus {
    /// Not checked yet: the database or storage did not answer.
    Unverified,
    /// The store holds the id the database records.
    Verified,
    /// The store is not the one the database records.
    WrongStore,
}

/// The outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Verified(Uuid),
    Mismatch {
        /// The id the database records (`None`: none, and the marker could not be adopted).
        recorded: Option<Uuid>,
        found: MarkerState,
    },
}

/// Checks the store against the database, and keeps the result for requests and `/readyz`.
pub struct StoreGuard {
    storage: Arc<dyn Storage>,
    records: StoreIdentityRepository,
    adopt: bool,
    status: AtomicU8,
    /// The id the database recorded at the last full check: what the marker must hold.
    expected: Mutex<Option<Uuid>>,
    /// Serialises full checks within this process (other processes are handled by the SQL).
    checking: tokio::sync::Mutex<()>,
}

impl StoreGuard {
    /// A guard for `storage` (the backend itself, not a wrapper), unverified until checked.
    /// With `adopt`, a check re-records the database to whatever store it finds.
    pub fn new(storage: Arc<dyn Storage>, pool: PgPool, adopt: bool) -> Self {
        Self {
            storage,
            records: StoreIdentityRepository::new(pool),
            adopt,
            status: AtomicU8::new(StoreStatus::Unverified as u8),
            expected: Mutex::new(None),
            checking: tokio::sync::Mutex::new(()),
        }
    }

    /// The last known status: one atomic load, no round trip.
    pub fn status(&self) -> StoreStatus {
        match self.status.load(Ordering::Acquire) {
            s if s == StoreStatus::Verified as u8 => StoreStatus::Verified,
            s if s == StoreStatus::WrongStore as u8 => StoreStatus::WrongStore,
            _ => StoreStatus::Unverified,
        }
    }

    /// The full check: reads the marker and the recorded id, records or adopts as the rules
    /// say, logs the verdict (an error saying why and how to fix a mismatch) and keeps it.
    /// Fails only when the database or storage did not answer; the status is then unchanged.
    pub async fn verify(&self) -> anyhow::Result<Verdict> {
        let _one_at_a_time = self.checking.lock().await;
        let verdict = self.settle().await?;
        match verdict {
            Verdict::Verified(id) => {
                tracing::info!(store_id = %id, marker = %self.location(), "store identity verified");
                self.keep(Some(id), StoreStatus::Verified);
            }
            Verdict::Mismatch { recorded, found } => {
                tracing::error!(
                    marker = %self.location(),
                    "wrong store, refusing to use it: {}",
                    self.explain(recorded, found)
                );
                self.keep(recorded, StoreStatus::WrongStore);
            }
        }
        Ok(verdict)
    }

    /// The cheap check of each `/readyz`: re-reads the marker and compares it with the id the
    /// database recorded, so a volume that vanished or was swapped shows up. Runs the full
    /// check instead while none has completed. Logs when the status changes.
    pub async fn recheck(&self) -> anyhow::Result<StoreStatus> {
        let expected = *self.expected.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(expected) = expected else {
            self.verify().await?;
            return Ok(self.status());
        };
        let found = self.read().await?;
        let status = if found == MarkerState::Present(expected) {
            StoreStatus::Verified
        } else {
            StoreStatus::WrongStore
        };
        let before = self.status();
        if status != before {
            match status {
                StoreStatus::WrongStore => tracing::error!(
                    marker = %self.location(),
                    "the store changed under the running server; refusing to serve: {}",
                    self.explain(Some(expected), found)
                ),
                _ => tracing::info!(store_id = %expected, "the store matches its database again"),
            }
        }
        self.keep(Some(expected), status);
        Ok(status)
    }

    fn keep(&self, expected: Option<Uuid>, status: StoreStatus) {
        *self.expected.lock().unwrap_or_else(PoisonError::into_inner) = expected;
        self.status.store(status as u8, Ordering::Release);
    }

    fn marker(&self) -> anyhow::Result<&dyn StoreMarker> {
        self.storage
            .marker()
            .ok_or_else(|| anyhow!("this storage backend keeps no store marker"))
    }

    fn location(&self) -> String {
        self.marker()
            .map(|m| m.marker_location())
            .unwrap_or_default()
    }

    async fn read(&self) -> anyhow::Result<MarkerState> {
        let contents = self
            .marker()?
            .read_marker()
            .await
            .context("reading the store marker")?;
        Ok(MarkerState::from_contents(contents.as_deref()))
    }

    async fn settle(&self) -> anyhow::Result<Verdict> {
        self.records
            .one_at_a_time(|| self.settle_alone())
            .await
            .context("checking the store identity")
    }

    async fn settle_alone(&self) -> anyhow::Result<Verdict> {
        let found = self.read().await?;
        let recorded = self
            .records
            .recorded()
            .await
            .context("reading the recorded store id")?;
        match (recorded, found) {
            (_, MarkerState::Unreadable) => Ok(Verdict::Mismatch { recorded, found }),
            (Some(id), MarkerState::Present(marker)) if id == marker => Ok(Verdict::Verified(id)),
            (Some(previous), found) if self.adopt => self.adopt(previous, found).await,
            (Some(_), found) => Ok(Verdict::Mismatch { recorded, found }),
            (None, found) => self.record(found).await,
        }
    }

    /// A database that records no store (a new install, or an upgrade) adopts this one.
    async fn record(&self, found: MarkerState) -> anyhow::Result<Verdict> {
        let found = match found {
            MarkerState::Missing => self.create(Uuid::new_v4()).await?,
            other => other,
        };
        let MarkerState::Present(id) = found else {
            return Ok(Verdict::Mismatch {
                recorded: None,
                found,
            });
        };
        let recorded = self
            .records
            .record_if_absent(id)
            .await
            .context("recording the store id")?;
        if recorded != id {
            // Another server recorded another store first.
            return Ok(Verdict::Mismatch {
                recorded: Some(recorded),
                found,
            });
        }
        tracing::info!(store_id = %id, marker = %self.location(), "the database recorded no store: recorded this one");
        Ok(Verdict::Verified(id))
    }

    /// `storage.adopt_store`: re-records the database to this store, marking it if needed.
    async fn adopt(&self, previous: Uuid, found: MarkerState) -> anyhow::Result<Verdict> {
        let found = match found {
            MarkerState::Missing => self.create(Uuid::new_v4()).await?,
            other => other,
        };
        let MarkerState::Present(id) = found else {
            return Ok(Verdict::Mismatch {
                recorded: Some(previous),
                found,
            });
        };
        self.records
            .replace(id)
            .await
            .context("re-recording the store id")?;
        tracing::warn!(
            previous_store_id = %previous,
            store_id = %id,
            marker = %self.location(),
            "storage.adopt_store: the database now records this store; assets recorded before may point at objects it does not hold. Turn storage.adopt_store off again"
        );
        Ok(Verdict::Verified(id))
    }

    /// Marks the store as `candidate` unless a marker appeared meanwhile; returns what the
    /// store's marker says afterwards.
    async fn create(&self, candidate: Uuid) -> anyhow::Result<MarkerState> {
        let marker = self.marker()?;
        let created = marker
            .create_marker(&marker_contents(candidate))
            .await
            .context("writing the store marker")?;
        if created {
            return Ok(MarkerState::Present(candidate));
        }
        // Another server marked it first; its id wins.
        self.read().await
    }

    /// Why the store is refused and what to do about it, for the log and `sweep`.
    pub fn explain(&self, recorded: Option<Uuid>, found: MarkerState) -> String {
        let location = self.location();
        let recorded = match recorded {
            Some(id) => format!("the database records store {id}"),
            None => "the database records no store".to_owned(),
        };
        match found {
            MarkerState::Unreadable => format!(
                "{recorded}, but {location} is not a store marker; move it away or restore the original"
            ),
            found => {
                let found = match found {
                    MarkerState::Present(id) => format!("{location} holds store {id}"),
                    _ => format!("there is no store marker at {location}"),
                };
                format!(
                    "{recorded}, but {found}. If the storage settings point at the wrong place \
                     (storage.local.root, which is relative to the working directory, \
                     storage.bucket, storage.key_prefix, or a volume that is not mounted), fix \
                     them and restart. If this store is meant to replace the recorded one, start \
                     once with storage.adopt_store = true (UPLOADER_STORAGE__ADOPT_STORE=true); \
                     assets recorded before may then point at nothing"
                )
            }
        }
    }
}
