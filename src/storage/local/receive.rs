//! Receiving an upload's bytes: streamed to a staging file with the signed limits enforced on
//! the way, and published under its key only once the whole body arrived and matched.

use anyhow::anyhow;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{LocalStorage, SignatureError, SignedRequest, object_path};
use crate::domain::Sha256Checksum;
use crate::storage::{StorageError, StoredObject};

/// Upload parts in flight at once while streaming to disk; bounds memory per upload.
pub(super) const MAX_PARTS_IN_FLIGHT: usize = 4;

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

/// What arrived: its size and SHA-256.
#[derive(Debug, Clone, Copy)]
pub(super) struct Received {
    pub size: u64,
    pub digest: [u8; 32],
}

impl Received {
    pub fn checksum(&self) -> Sha256Checksum {
        Sha256Checksum::from_digest(&self.digest).expect("SHA-256 digests are 32 bytes")
    }
}

/// Where a body's bytes go while it streams in.
pub(super) enum Sink<'a> {
    /// object_store's staging file of an object.
    Object(&'a mut WriteMultipart),
    /// A file of ours (a part of a multipart upload).
    File(&'a mut tokio::fs::File),
}

impl Sink<'_> {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        let failed = |e: anyhow::Error| StorageError::Other(e.context("writing the upload"));
        match self {
            Self::Object(writer) => {
                writer
                    .wait_for_capacity(MAX_PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| failed(anyhow!(e)))?;
                writer.put(chunk);
                Ok(())
            }
            Self::File(file) => file.write_all(&chunk).await.map_err(|e| failed(anyhow!(e))),
        }
    }
}

/// An upload in its staging file, not yet visible under its key.
pub(super) struct Staged<'a> {
    storage: &'a LocalStorage,
    key: String,
    writer: WriteMultipart,
    stored: StoredObject,
}

impl Staged<'_> {
    /// Publishes the object under its key (rename into place, fsynced), unless its asset was
    /// completed while the body streamed in.
    pub async fn commit(self) -> Result<StoredObject, UploadRejection> {
        if let Err(sealed) = self.storage.refuse_if_sealed(&self.key).await {
            self.discard().await;
            return Err(sealed);
        }
        self.writer
            .finish()
            .await
            .map_err(|e| StorageError::Other(anyhow!(e).context("finishing the upload")))?;
        Ok(self.stored)
    }

    /// Removes the staging file.
    pub async fn discard(self) {
        let _ = self.writer.abort().await;
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
        let upload = self
            .store
            .put_multipart(&object_path(&signed.key))
            .await
            .map_err(|e| StorageError::Other(anyhow!(e).context("starting the upload")))?;
        let mut writer = WriteMultipart::new(upload);
        let received = write_body(&mut Sink::Object(&mut writer), body, body_limit(signed))
            .await
            .and_then(|received| verify_upload(signed, &received).map(|()| received));
        match received {
            Ok(received) => Ok(Staged {
                storage: self,
                key: signed.key.clone(),
                writer,
                stored: StoredObject {
                    size: received.size,
                    checksum_sha256: Some(received.checksum()),
                },
            }),
            Err(rejection) => {
                let _ = writer.abort().await;
                Err(rejection)
            }
        }
    }
}

/// The most bytes a signed request may carry: its exact length, else its size limit.
pub fn body_limit(signed: &SignedRequest) -> u64 {
    signed.length.or(signed.max_size).unwrap_or(0)
}

/// Copies `body` into `sink`, refusing it as soon as it exceeds `limit` bytes.
pub(super) async fn write_body<S>(
    sink: &mut Sink<'_>,
    mut body: S,
    limit: u64,
) -> Result<Received, UploadRejection>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(UploadRejection::BodyRead)?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(UploadRejection::TooLarge { limit });
        }
        hasher.update(&chunk);
        sink.write(chunk).await?;
    }
    Ok(Received {
        size,
        digest: hasher.finalize().into(),
    })
}

/// Checks what arrived against the declared length and checksum.
pub(super) fn verify_upload(
    signed: &SignedRequest,
    received: &Received,
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
