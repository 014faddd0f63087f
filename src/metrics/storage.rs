//! [`InstrumentedStorage`]: any [`Storage`] backend, with the latency and outcome of every
//! call recorded.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::Metrics;
use crate::storage::{
    DownloadSpec, ListedObject, MultipartStorage, SignedUpload, Storage, StorageError,
    StoredObject, UploadCheck, UploadSpec,
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
            Err(StorageError::Unavailable(_)) => "unavailable",
            Err(StorageError::Other(_)) => "error",
        };
        self.metrics
            .record_storage(operation, outcome, started.elapsed());
        result
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

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        self.timed("list", self.inner.list(prefix), |_| "ok").await
    }

    async fn check_ready(&self) -> Result<(), StorageError> {
        self.timed("check_ready", self.inner.check_ready(), |_| "ok")
            .await
    }

    fn multipart(&self) -> Option<&dyn MultipartStorage> {
        self.inner.multipart()
    }
}
