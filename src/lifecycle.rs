//! Cleaning up after clients: the sweeper removes pending assets whose upload URL expired
//! long ago (with their objects), and the orphan scan removes objects no asset refers to
//! (left behind by crashes), and multipart uploads no asset refers to. The sweeper runs
//! inside the server on an interval, and both run once from the `sweep` subcommand (e.g. a
//! Kubernetes CronJob). Neither runs against a store that is not
//! the one the database records (see `storage::identity`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::config::Settings;
use crate::db::AssetRepository;
use crate::domain::Asset;
use crate::metrics::Metrics;
use crate::storage::identity::{StoreGuard, StoreStatus};
use crate::storage::{ListedUpload, Storage};

/// Keys looked up in the database per round of the orphan scan.
const ORPHAN_CHUNK: usize = 1000;
/// Objects of a swept batch deleted at once: storage round trips overlap (one at a time, a sweep
/// of 100 000 ran at 1 570 assets/s against S3 on loopback, at once 3 700; bench/README.md),
/// and a batch never has more requests in flight than this.
const SWEEP_DELETES_AT_ONCE: usize = 16;

/// What a sweep of expired uploads did (or, dry, would do). The storage keys went to the
/// sweep's callback one by one, so a sweep of any size holds one batch at a time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpiredSweep {
    /// Pending assets removed (or removable).
    pub removed: u64,
    /// Another sweeper held the lock; this one did nothing.
    pub skipped: bool,
}

/// What an orphan scan removes (or, dry, would remove), handed to its callback as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orphan<'a> {
    /// An object under `key_prefix` that no asset refers to: its storage key.
    Object(&'a str),
    /// A multipart upload that no asset refers to: its id.
    Upload(&'a str),
    /// One of the storage backend's own working files that a crash left behind (local
    /// backend: unfinished staging files, records of objects that are gone): its path inside
    /// the store.
    WorkingFile(&'a str),
}

/// How many of each an orphan scan removed (or, dry, would remove).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OrphanSweep {
    pub objects: u64,
    pub uploads: u64,
    pub working_files: u64,
}

/// Removes abandoned uploads.
#[derive(Clone)]
pub struct Sweeper {
    assets: AssetRepository,
    storage: Arc<dyn Storage>,
    grace: Duration,
    batch: u32,
    bucket: String,
    key_prefix: String,
    metrics: Option<Arc<Metrics>>,
    /// When set, the periodic sweep skips its rounds while the store is not verified.
    store: Option<Arc<StoreGuard>>,
}

impl Sweeper {
    pub fn new(assets: AssetRepository, storage: Arc<dyn Storage>, settings: &Settings) -> Self {
        Self {
            assets,
            storage,
            grace: settings.lifecycle.pending_grace,
            batch: settings.lifecycle.sweep_batch_size,
            bucket: settings.storage.bucket.clone(),
            key_prefix: settings.storage.key_prefix.clone(),
            metrics: None,
            store: None,
        }
    }

    /// Makes the periodic sweep wait for `store` to be verified (the server's guard).
    pub fn with_store_guard(mut self, store: Arc<StoreGuard>) -> Self {
        self.store = Some(store);
        self
    }

    /// Counts what this sweeper removes in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Removes every pending asset whose upload URL expired more than `pending_grace` ago,
    /// record first, then its object, a batch (`lifecycle.sweep_batch_size`) at a time,
    /// handing each removed asset's storage key to `removed`. With `dry_run`, only hands over
    /// what it would remove. Memory stays at one batch however many assets go.
    pub async fn sweep_expired(
        &self,
        dry_run: bool,
        mut removed: impl FnMut(&str) + Send,
    ) -> anyhow::Result<ExpiredSweep> {
        let mut sweep = ExpiredSweep::default();
        if dry_run {
            let mut after = None;
            loop {
                let page = self
                    .assets
                    .expired_pending(self.grace, after, self.batch)
                    .await?;
                page.iter().for_each(|asset| removed(&asset.storage_key));
                sweep.removed += page.len() as u64;
                match page.last() {
                    Some(last) if page.len() == self.batch as usize => {
                        after = Some((last.upload_expires_at, last.id));
                    }
                    _ => return Ok(sweep),
                }
            }
        }
        loop {
            let Some(batch) = self
                .assets
                .take_expired_pending(self.grace, self.batch)
                .await?
            else {
                sweep.skipped = true;
                return Ok(sweep);
            };
            let done = batch.len() < self.batch as usize;
            if let Some(metrics) = &self.metrics {
                metrics.assets_swept(batch.len() as u64);
            }
            let swept: Vec<String> = stream::iter(batch)
                .map(|asset| self.remove_object_of(asset))
                .buffer_unordered(SWEEP_DELETES_AT_ONCE)
                .collect()
                .await;
            swept.iter().for_each(|key| removed(key));
            sweep.removed += swept.len() as u64;
            if done {
                return Ok(sweep);
            }
        }
    }

    /// Deletes the object (and aborts the multipart upload) of an asset whose record the sweep
    /// removed; returns its storage key.
    async fn remove_object_of(&self, asset: Asset) -> String {
        // The record is gone; an object that cannot be deleted now is an orphan that a later
        // orphan scan removes.
        if let (Some(upload), Some(storage)) = (&asset.multipart, self.storage.multipart())
            && let Err(error) = storage.abort(&asset.storage_key, &upload.upload_id).await
        {
            tracing::warn!(asset_id = %asset.id, error = %crate::error::error_chain(&error), "swept an asset but could not abort its multipart upload");
        }
        if let Err(error) = self.storage.delete(&asset.storage_key).await {
            tracing::warn!(asset_id = %asset.id, error = %crate::error::error_chain(&error), "swept an asset but not its object");
        }
        tracing::info!(asset_id = %asset.id, owner = %asset.owner, "swept an abandoned upload");
        asset.storage_key
    }

    /// Removes objects under `key_prefix` that no asset refers to and that are older than
    /// `pending_grace` (younger ones may belong to an upload being recorded right now), and
    /// likewise unfinished multipart uploads and the backend's leftover working files, handing
    /// each to `removed` as it goes. With `dry_run`, only hands over what it would remove.
    /// Storage is listed a page at a time, so memory stays at one page however many objects
    /// the store holds.
    pub async fn sweep_orphans(
        &self,
        dry_run: bool,
        mut removed: impl FnMut(Orphan<'_>) + Send,
    ) -> anyhow::Result<OrphanSweep> {
        let cutoff = Utc::now() - chrono::Duration::from_std(self.grace).unwrap_or_default();
        let mut sweep = OrphanSweep::default();
        let mut pages = self.storage.list(&self.key_prefix);
        while let Some(page) = pages.next().await {
            let candidates: Vec<String> = page
                .context("listing stored objects")?
                .into_iter()
                .filter(|object| object.last_modified < cutoff)
                .map(|object| object.storage_key)
                .collect();
            for chunk in candidates.chunks(ORPHAN_CHUNK) {
                let referenced = self.assets.referenced_keys(&self.bucket, chunk).await?;
                let orphans: Vec<&String> = chunk
                    .iter()
                    .filter(|key| !referenced.contains(*key))
                    .collect();
                if !dry_run {
                    stream::iter(&orphans)
                        .map(|key| self.delete_orphan(key))
                        .buffer_unordered(SWEEP_DELETES_AT_ONCE)
                        .try_collect::<()>()
                        .await?;
                }
                orphans.iter().for_each(|key| removed(Orphan::Object(key)));
                sweep.objects += orphans.len() as u64;
            }
        }
        for upload_id in self.sweep_stale_uploads(cutoff, dry_run).await? {
            removed(Orphan::Upload(&upload_id));
            sweep.uploads += 1;
        }
        let leftovers = self
            .storage
            .sweep_leftovers(cutoff, dry_run)
            .await
            .context("sweeping the storage's working files")?;
        for path in &leftovers {
            if !dry_run {
                tracing::info!(path = %path, "deleted a leftover working file");
            }
            removed(Orphan::WorkingFile(path));
            sweep.working_files += 1;
        }
        Ok(sweep)
    }

    async fn delete_orphan(&self, storage_key: &str) -> anyhow::Result<()> {
        self.storage
            .delete(storage_key)
            .await
            .with_context(|| format!("deleting orphan {storage_key}"))?;
        tracing::info!(storage_key = %storage_key, "deleted an orphaned object");
        Ok(())
    }

    /// Discards multipart uploads untouched since `cutoff` whose storage key no asset refers
    /// to: left by a crash between starting an upload and recording it, or by a failed
    /// abort. Returns their ids.
    async fn sweep_stale_uploads(
        &self,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> anyhow::Result<Vec<String>> {
        let Some(storage) = self.storage.multipart() else {
            return Ok(Vec::new());
        };
        let stale: Vec<ListedUpload> = storage
            .list_uploads()
            .await
            .context("listing multipart uploads")?
            .into_iter()
            .filter(|upload| upload.last_modified < cutoff)
            .collect();
        let keys: Vec<String> = stale.iter().filter_map(|u| u.storage_key.clone()).collect();
        let mut referenced = HashSet::new();
        for chunk in keys.chunks(ORPHAN_CHUNK) {
            referenced.extend(self.assets.referenced_keys(&self.bucket, chunk).await?);
        }
        let mut removed = Vec::new();
        for upload in stale {
            let key = upload.storage_key.unwrap_or_default();
            if referenced.contains(&key) {
                continue;
            }
            if !dry_run {
                storage
                    .abort(&key, &upload.upload_id)
                    .await
                    .with_context(|| format!("aborting multipart upload {}", upload.upload_id))?;
                tracing::info!(upload_id = %upload.upload_id, storage_key = %key, "removed a stale multipart upload");
            }
            removed.push(upload.upload_id);
        }
        Ok(removed)
    }

    /// Sweeps every `interval` until the application stops.
    pub fn spawn(self, interval: Duration) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                if let Some(store) = &self.store
                    && store.status() != StoreStatus::Verified
                {
                    tracing::debug!("sweep skipped: the store is not verified");
                    continue;
                }
                match self.sweep_expired(false, |_| {}).await {
                    Ok(sweep) if sweep.removed > 0 => {
                        tracing::info!(removed = sweep.removed, "sweep finished");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(error = format!("{error:#}"), "sweep failed"),
                }
            }
        });
    }
}
