//! [`InstrumentedStorage`]: any [`Storage`] backend, with the latency and outcome of every
//! call recorded, its multipart calls included.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::{self, StreamExt};

use super::Metrics;
use crate::domain::{ContentType, Sha256Checksum};
use crate::storage::{
    CompleteError, DownloadSpec, ListedUpload, MultipartStorage, ObjectPages, PartRef, PartSpec,
    PresignedPart, SignedUpload, Storage, StorageError, StoredObject, StoredPart, UploadCheck,
    UploadSpec,
};

/// A storage backend whose calls are timed into
/// `uploader_storage_operation_duration_seconds{operation, outcome}`.
pub struct InstrumentedStorage {
    inner: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
}

impl InstrumentedStorage {
    pub fn new(inner: Arc<dyn Storage>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StorageError>>,
        outcome_of: impl FnOnce(&T) -> &'static str,
    ) -> Result<T, StorageError> {
        let started = Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(value) => outcome_of(value),
            Err(error) => failure(error),
        };
        self.metrics
            .record_storage(operation, outcome, started.elapsed());
        result
    }

    /// The backend's multipart side; only called when it has one.
    fn inner_multipart(&self) -> &dyn MultipartStorage {
        self.inner
            .multipart()
            .expect("multipart() hands out the wrapper only when the backend has one")
    }
}

fn failure(error: &StorageError) -> &'static str {
    match error {
        StorageError::Unavailable(_) => "unavailable",
        StorageError::Other(_) => "error",
    }
}

#[async_trait]
impl Storage for InstrumentedStorage {
    async fn presign_upload(&self, spec: &UploadSpec<'_>) -> Result<SignedUpload, StorageError> {
        self.timed("presign_upload", self.inner.presign_upload(spec), |_| "ok")
            .await
    }

    async fn presign_download(&self, spec: &DownloadSpec<'_>) -> Result<String, StorageError> {
        self.timed(
            "presign_download",
            self.inner.presign_download(spec),
            |_| "ok",
        )
        .await
    }

    async fn stat(
        &self,
        storage_key: &str,
        with_checksum: bool,
    ) -> Result<Option<StoredObject>, StorageError> {
        self.timed(
            "stat",
            self.inner.stat(storage_key, with_checksum),
            |found| if found.is_some() { "ok" } else { "not_found" },
        )
        .await
    }

    async fn check_upload(
        &self,
        storage_key: &str,
        with_checksum: bool,
    ) -> Result<UploadCheck, StorageError> {
        // Recorded as `stat`, the call completion made before backends kept records.
        self.timed(
            "stat",
            self.inner.check_upload(storage_key, with_checksum),
            |found| match found {
                UploadCheck::Stored(_) => "ok",
                UploadCheck::Missing => "not_found",
                UploadCheck::Altered(_) => "altered",
            },
        )
        .await
    }

    async fn delete(&self, storage_key: &str) -> Result<(), StorageError> {
        self.timed("delete", self.inner.delete(storage_key), |_| "ok")
            .await
    }

    async fn seal(&self, storage_key: &str) -> Result<(), StorageError> {
        self.timed("seal", self.inner.seal(storage_key), |_| "ok")
            .await
    }

    async fn unseal(&self, storage_key: &str) -> Result<(), StorageError> {
        self.timed("unseal", self.inner.unseal(storage_key), |_| "ok")
            .await
    }

    /// Each page is one listing call, timed from when it is asked for until it arrives.
    fn list<'a>(&'a self, prefix: &'a str) -> ObjectPages<'a> {
        stream::unfold(self.inner.list(prefix), move |mut pages| async move {
            let started = Instant::now();
            let page = pages.next().await?;
            let outcome = page.as_ref().map_or_else(failure, |_| "ok");
            self.metrics
                .record_storage("list", outcome, started.elapsed());
            Some((page, pages))
        })
        .boxed()
    }

    async fn sweep_leftovers(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        dry_run: bool,
    ) -> Result<Vec<String>, StorageError> {
        self.timed(
            "sweep_leftovers",
            self.inner.sweep_leftovers(before, dry_run),
            |_| "ok",
        )
        .await
    }

    async fn check_ready(&self) -> Result<(), StorageError> {
        self.timed("check_ready", self.inner.check_ready(), |_| "ok")
            .await
    }

    fn multipart(&self) -> Option<&dyn MultipartStorage> {
        self.inner
            .multipart()
            .map(|_| self as &dyn MultipartStorage)
    }
}

#[async_trait]
impl MultipartStorage for InstrumentedStorage {
    async fn start(
        &self,
        storage_key: &str,
        content_type: Option<&ContentType>,
        part_checksums: bool,
    ) -> Result<String, StorageError> {
        let call = self
            .inner_multipart()
            .start(storage_key, content_type, part_checksums);
        self.timed("multipart_start", call, |_| "ok").await
    }

    async fn presign_part(
        &self,
        storage_key: &str,
        upload_id: &str,
        part: &PartSpec<'_>,
        expires_in: Duration,
    ) -> Result<PresignedPart, StorageError> {
        let call = self
            .inner_multipart()
            .presign_part(storage_key, upload_id, part, expires_in);
        self.timed("presign_part", call, |_| "ok").await
    }

    async fn list_parts(
        &self,
        storage_key: &str,
        upload_id: &str,
    ) -> Result<Vec<StoredPart>, StorageError> {
        let call = self.inner_multipart().list_parts(storage_key, upload_id);
        self.timed("list_parts", call, |_| "ok").await
    }

    async fn complete(
        &self,
        storage_key: &str,
        upload_id: &str,
        parts: &[PartRef],
    ) -> Result<(), CompleteError> {
        let started = Instant::now();
        let result = self
            .inner_multipart()
            .complete(storage_key, upload_id, parts)
            .await;
        let outcome = match &result {
            Ok(()) => "ok",
            Err(CompleteError::Rejected(_)) => "rejected",
            Err(CompleteError::UploadGone) => "not_found",
            Err(CompleteError::Storage(error)) => failure(error),
        };
        self.metrics
            .record_storage("multipart_complete", outcome, started.elapsed());
        result
    }

    async fn hash_parts(
        &self,
        storage_key: &str,
        part_size: u64,
    ) -> Result<Vec<Sha256Checksum>, StorageError> {
        let call = self.inner_multipart().hash_parts(storage_key, part_size);
        self.timed("hash_parts", call, |_| "ok").await
    }

    async fn abort(&self, storage_key: &str, upload_id: &str) -> Result<(), StorageError> {
        let call = self.inner_multipart().abort(storage_key, upload_id);
        self.timed("multipart_abort", call, |_| "ok").await
    }

    async fn list_uploads(&self) -> Result<Vec<ListedUpload>, StorageError> {
        let call = self.inner_multipart().list_uploads();
        self.timed("list_uploads", call, |_| "ok").await
    }
}
