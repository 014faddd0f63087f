//! Receiving an upload's bytes: streamed to a staging file with the signed limits enforced on
//! the way (hashed as they pass), and published under its key, with its record, only once
//! the whole body arrived and matched.

use anyhow::anyhow;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::record::Record;
use super::staging::{StagingFile, TempFile, staging_path, sync_dir};
use super::{LocalStorage, SignatureError, SignedRequest};
use crate::storage::digest::Digested;
use crate::storage::{StorageError, StoredObject};

/// Why an upload to a local signed URL or form was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadRejection {
    #[error("the body exceeds the signed limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the body has {received} bytes but {expected} were declared")]
    LengthMismatch { expected: u64, received: u64 },
    #[error("the body does not match the declared SHA-256 checksum")]
    ChecksumMismatch,
    #[error("the declared content type does not match the signed content type")]
    ContentTypeMismatch,
    #[error("the request body could not be read: {0}")]
    BodyRead(#[source] std::io::Error),
    /// A form that is not the one the server issued: says what is wrong.
    #[error("{0}")]
    MalformedForm(String),
    /// A form whose signature fields are missing, altered or expired.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("part number {0} is not between 1 and 10000")]
    InvalidPartNumber(u32),
    /// The object belongs to a complete asset: its bytes are frozen.
    #[error("the asset is complete; its object cannot be replaced")]
    Sealed,
    /// The multipart upload was completed or aborted, or never existed.
    #[error("no such multipart upload: it was completed or aborted")]
    NoSuchUpload,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// An upload in its staging file, whole and fsynced, not yet visible under its key.
pub(super) struct Staged<'a> {
    storage: &'a LocalStorage,
    key: String,
    file: TempFile,
    metadata: std::fs::Metadata,
    received: Digested,
}

impl Staged<'_> {
    /// Publishes the object under its key with its record (see `record`), unless its asset
    /// was completed while the body streamed in.
    pub async fn commit(self) -> Result<StoredObject, UploadRejection> {
        self.storage.refuse_if_sealed(&self.key).await?;
        let record = Record::of(&self.received, &self.metadata);
        self.storage
            .publish(&self.key, self.file, &record)
            .await
            .map_err(|e| StorageError::Other(anyhow!(e).context("publishing the upload")))?;
        Ok(StoredObject {
            size: self.received.size,
            checksum_sha256: Some(self.received.checksum()),
            composite_sha256: None,
        })
    }

    /// Removes the staging file.
    pub async fn discard(self) {
        drop(self.file);
    }
}

impl LocalStorage {
    /// Streams an upload to disk, enforcing what `signed` allows. The file appears under its
    /// key only after the whole body arrived and matched; otherwise nothing is left behind.
    pub async fn receive<S>(
        &self,
        signed: &SignedRequest,
        content_type: Option<&str>,
        body: S,
    ) -> Result<StoredObject, UploadRejection>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin,
    {
        self.stage(signed, content_type, body).await?.commit().await
    }

    /// Streams an upload to a staging file and checks it against `signed`; the caller
    /// commits or discards it.
    pub(super) async fn stage<S>(
        &self,
        signed: &SignedRequest,
        content_type: Option<&str>,
        body: S,
    ) -> Result<Staged<'_>, UploadRejection>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin,
    {
        if signed.content_type.is_some() && signed.content_type.as_deref() != content_type {
            return Err(UploadRejection::ContentTypeMismatch);
        }
        self.refuse_if_sealed(&signed.key).await?;
        let file = StagingFile::create(staging_path(&self.staging_dir()))
            .await
            .map_err(|e| StorageError::Other(anyhow!(e).context("starting the upload")))?;
        let (file, metadata, received) = write_body(file, body, body_limit(signed)).await?;
        verify_upload(signed, &received)?;
        Ok(Staged {
            storage: self,
            key: signed.key.clone(),
            file,
            metadata,
            received,
        })
    }

    /// Moves `file` to the object under `key`, its `record` written first (see `record`),
    /// and fsyncs the directory: the object appears whole, with its record, or not at all.
    pub(super) async fn publish(
        &self,
        key: &str,
        file: TempFile,
        record: &Record,
    ) -> std::io::Result<()> {
        let object = self.file_of(key).map_err(std::io::Error::other)?;
        let parent = object.parent().map(std::path::Path::to_path_buf);
        if let Some(parent) = &parent {
            tokio::fs::create_dir_all(parent).await?;
        }
        self.write_record(&object, record).await?;
        tokio::fs::rename(file.path(), &object).await?;
        file.keep();
        match parent {
            Some(parent) => sync_dir(parent).await,
            None => Ok(()),
        }
    }
}

/// The most bytes a signed request may carry: its exact length, else its size limit.
pub fn body_limit(signed: &SignedRequest) -> u64 {
    signed.length.or(signed.max_size).unwrap_or(0)
}

/// Copies `body` into `file`, refusing it as soon as it exceeds `limit` bytes; returns the
/// file, fsynced, with what it holds.
pub(super) async fn write_body<S>(
    mut file: StagingFile,
    mut body: S,
    limit: u64,
) -> Result<(TempFile, std::fs::Metadata, Digested), UploadRejection>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(UploadRejection::BodyRead)?;
        if file.received() + chunk.len() as u64 > limit {
            return Err(UploadRejection::TooLarge { limit });
        }
        file.write(chunk)
            .await
            .map_err(|e| StorageError::Other(anyhow!(e).context("writing the upload")))?;
    }
    file.finish()
        .await
        .map_err(|e| StorageError::Other(anyhow!(e).context("finishing the upload")).into())
}

/// Checks what arrived against the declared length and checksum.
pub(super) fn verify_upload(
    signed: &SignedRequest,
    received: &Digested,
) -> Result<(), UploadRejection> {
    if let Some(expected) = signed.length
        && expected != received.size
    {
        return Err(UploadRejection::LengthMismatch {
            expected,
            received: received.size,
        });
    }
    if signed
        .checksum_sha256
        .as_deref()
        .is_some_and(|expected| expected != received.checksum().as_str())
    {
        return Err(UploadRejection::ChecksumMismatch);
    }
    Ok(())
}
