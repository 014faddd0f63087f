//! Object storage behind one trait, [`Storage`], with one module per backend:
//! [`s3`] (AWS S3 and S3-compatible services) and [`local`] (files on this server's disk,
//! with URLs the server signs and serves itself).
//!
//! A backend never moves an asset's bytes through the API: it signs URLs that let a client
//! talk to storage directly, and it inspects what storage holds when an upload is completed.
//! Each store carries a [`marker`] with its id, which [`identity`] checks against the
//! database.

mod digest;
pub mod identity;
pub mod local;
pub mod marker;
pub mod s3;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::Serialize;

use crate::config::{Settings, StorageBackend};
use crate::domain::{ContentType, Sha256Checksum};
use marker::StoreMarker;

/// What a signed upload URL must enforce.
#[derive(Debug, Clone)]
pub struct UploadSpec<'a> {
    pub storage_key: &'a str,
    pub content_type: Option<&'a ContentType>,
    /// Exact size the body must have, when declared.
    pub content_length: Option<u64>,
    pub checksum_sha256: Option<&'a Sha256Checksum>,
    /// Largest body storage may accept.
    pub max_size: u64,
    pub expires_in: Duration,
}

/// How a client sends the file: the request storage expects, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "method")]
pub enum SignedUpload {
    /// `PUT url` with exactly these headers and the file as the body.
    #[serde(rename = "PUT")]
    Put {
        url: String,
        headers: BTreeMap<String, String>,
    },
    /// `POST url` as `multipart/form-data`: these fields first, then the file in a field
    /// named `file`.
    #[serde(rename = "POST")]
    Post {
        url: String,
        fields: BTreeMap<String, String>,
    },
}

/// What a signed download URL serves.
#[derive(Debug, Clone)]
pub struct DownloadSpec<'a> {
    pub storage_key: &'a str,
    pub content_type: Option<&'a ContentType>,
    pub expires_in: Duration,
}

/// What storage holds under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    /// The object's SHA-256, when it was asked for.
    pub checksum_sha256: Option<Sha256Checksum>,
    /// The composite checksum storage reports for an object assembled from parts that each
    /// carried a SHA-256 (`<base64>-<part count>`, S3's checksum type `COMPOSITE`), if any.
    pub composite_sha256: Option<String>,
}

/// What completion finds in storage for an upload ([`Storage::check_upload`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadCheck {
    /// Nothing is stored under the key.
    Missing,
    /// Storage holds this object.
    Stored(StoredObject),
    /// Storage recorded what arrived when the upload was stored, and the object no longer
    /// matches that record (changed or cut short since); says how. Never to be completed.
    Altered(String),
}

/// An object found by [`Storage::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub storage_key: String,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// What [`Storage::list`] finds, a page at a time: each page is one listing call to storage
/// (S3: up to 1 000 keys), fetched only when the previous one has been taken.
pub type ObjectPages<'a> = BoxStream<'a, Result<Vec<ListedObject>, StorageError>>;

/// Failures of the storage service.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Storage could not be reached or refused the call; worth retrying later.
    #[error("storage unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Anything else (misconfiguration, a bug).
    #[error("storage error: {0:#}")]
    Other(anyhow::Error),
}

/// An object store that can sign URLs for clients and inspect what they stored.
#[async_trait]
pub trait Storage: Send + Sync {
    /// Signs a request that uploads one object, enforcing `spec` in storage itself.
    async fn presign_upload(&self, spec: &UploadSpec<'_>) -> Result<SignedUpload, StorageError>;

    /// Signs a `GET` URL for one object.
    async fn presign_download(&self, spec: &DownloadSpec<'_>) -> Result<String, StorageError>;

    /// What storage holds under `storage_key`, or `None` when nothing is there. With
    /// `with_checksum`, also the SHA-256 of the stored bytes.
    async fn stat(
        &self,
        storage_key: &str,
        with_checksum: bool,
    ) -> Result<Option<StoredObject>, StorageError>;

    /// What completion may trust about the object under `storage_key`. Backends that record
    /// an upload's size and SHA-256 while its bytes arrive answer from that record, without
    /// reading the object; the default asks [`Storage::stat`] (which, `with_checksum`, reads
    /// the object back to hash it).
    async fn check_upload(
        &self,
        storage_key: &str,
        with_checksum: bool,
    ) -> Result<UploadCheck, StorageError> {
        Ok(match self.stat(storage_key, with_checksum).await? {
            Some(stored) => UploadCheck::Stored(stored),
            None => UploadCheck::Missing,
        })
    }

    /// Removes the object under `storage_key`; succeeds when nothing was there.
    async fn delete(&self, storage_key: &str) -> Result<(), StorageError>;

    /// Every object whose key starts with `prefix/`, for finding leftovers; never the
    /// store's marker. Pages come as they are asked for, so a listing of any size holds one
    /// page in memory.
    fn list<'a>(&'a self, prefix: &'a str) -> ObjectPages<'a>;

    /// A cheap call proving storage answers (for `/readyz`).
    async fn check_ready(&self) -> Result<(), StorageError>;

    /// Freezes the object under `storage_key` before its asset is marked complete: no upload
    /// URL can replace it afterwards (a delete still removes it). Backends whose upload URLs
    /// cannot replace an object anyway (S3: conditional `PUT`s, multipart uploads consumed
    /// by completion) have nothing to do.
    async fn seal(&self, _storage_key: &str) -> Result<(), StorageError> {
        Ok(())
    }

    /// Undoes [`Storage::seal`] when completion refused what was stored, so the client can
    /// send the file again.
    async fn unseal(&self, _storage_key: &str) -> Result<(), StorageError> {
        Ok(())
    }

    /// Removes this backend's own working files that a crash left behind and that were last
    /// modified before `before`; returns them (paths inside the store). With `dry_run`, only
    /// returns them. Backends that keep no such files (S3) have nothing to do.
    async fn sweep_leftovers(
        &self,
        _before: chrono::DateTime<chrono::Utc>,
        _dry_run: bool,
    ) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    /// Multipart uploads, when this backend offers them.
    fn multipart(&self) -> Option<&dyn MultipartStorage> {
        None
    }

    /// The store's marker (both backends have one; wrappers need not forward it).
    fn marker(&self) -> Option<&dyn StoreMarker> {
        None
    }
}

/// A part storage holds for a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPart {
    pub part_number: u32,
    /// The part's ETag, when storage reports it (S3 does; some compatible stores do not).
    pub etag: Option<String>,
    pub size: u64,
    /// The SHA-256 storage computed for the part's bytes, when it keeps one (S3 does for
    /// uploads started with part checksums; some compatible stores do not).
    #[serde(skip)]
    pub checksum_sha256: Option<Sha256Checksum>,
}

/// A part a client says it uploaded, to assemble the object from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRef {
    pub part_number: u32,
    pub etag: String,
    /// The part's declared SHA-256, for uploads started with part checksums: storage checks
    /// it against the part it holds.
    pub checksum_sha256: Option<Sha256Checksum>,
}

/// A signed `PUT` of one part: the client sends exactly these headers with the part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedPart {
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

/// The part a [`MultipartStorage::presign_part`] URL uploads.
#[derive(Debug, Clone, Copy)]
pub struct PartSpec<'a> {
    pub number: u32,
    /// Exact size of the body.
    pub size: u64,
    /// The SHA-256 the body must have, when declared.
    pub checksum_sha256: Option<&'a Sha256Checksum>,
}

/// A multipart upload found by [`MultipartStorage::list_uploads`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedUpload {
    pub upload_id: String,
    /// The storage key the upload is for; `None` when storage cannot tell (a crash while
    /// the upload was being started).
    pub storage_key: Option<String>,
    /// When a part was last stored (or the upload started).
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// Why a multipart upload could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum CompleteError {
    /// Storage refused the parts (wrong ETag, a missing or too small part); says which.
    #[error("{0}")]
    Rejected(String),
    /// Storage knows no such upload: already completed, or aborted.
    #[error("the multipart upload no longer exists")]
    UploadGone,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Uploads in parts, each part a signed `PUT` of its exact size: for files larger than one
/// request can carry (5 GiB on S3), and resumable after a broken connection.
#[async_trait]
pub trait MultipartStorage: Send + Sync {
    /// Starts an upload for `storage_key`; returns storage's upload id. With
    /// `part_checksums`, storage is told every part will carry its SHA-256.
    async fn start(
        &self,
        storage_key: &str,
        content_type: Option<&ContentType>,
        part_checksums: bool,
    ) -> Result<String, StorageError>;

    /// Signs the `PUT` of part `part_number`, whose body must be exactly `size` bytes and,
    /// when `checksum_sha256` is given, hash to it (storage refuses other bytes).
    async fn presign_part(
        &self,
        storage_key: &str,
        upload_id: &str,
        part: &PartSpec<'_>,
        expires_in: Duration,
    ) -> Result<PresignedPart, StorageError>;

    /// The parts storage holds so far.
    async fn list_parts(
        &self,
        storage_key: &str,
        upload_id: &str,
    ) -> Result<Vec<StoredPart>, StorageError>;

    /// Assembles the object from `parts`, in part-number order.
    async fn complete(
        &self,
        storage_key: &str,
        upload_id: &str,
        parts: &[PartRef],
    ) -> Result<(), CompleteError>;

    /// The SHA-256 of each `part_size` range of the object under `storage_key`, read back
    /// from storage: how completion checks parts on stores that keep no part checksums.
    /// Backends that always keep them (the local one) need not read anything back.
    async fn hash_parts(
        &self,
        _storage_key: &str,
        _part_size: u64,
    ) -> Result<Vec<Sha256Checksum>, StorageError> {
        Err(StorageError::Other(anyhow::anyhow!(
            "this backend keeps every part's checksum and reads none back"
        )))
    }

    /// Discards the upload and its parts; succeeds when it is already gone.
    async fn abort(&self, storage_key: &str, upload_id: &str) -> Result<(), StorageError>;

    /// Every unfinished upload storage holds, for the orphan scan to discard those no asset
    /// refers to. Backends whose storage expires unfinished uploads itself (S3's
    /// `AbortIncompleteMultipartUpload` lifecycle rule) list none.
    async fn list_uploads(&self) -> Result<Vec<ListedUpload>, StorageError> {
        Ok(Vec::new())
    }
}

/// The configured backend, ready to use.
pub async fn from_settings(
    settings: &Settings,
    public_url: &url::Url,
) -> anyhow::Result<Arc<dyn Storage>> {
    Ok(match settings.storage.backend {
        StorageBackend::S3 => Arc::new(s3::S3Storage::connect(&settings.storage).await?),
        StorageBackend::Local => Arc::new(local::LocalStorage::open(settings, public_url)?),
    })
}
