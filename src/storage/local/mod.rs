//! The local backend: objects are files under `storage.local.root`, written in large batches
//! through a staging file ([`staging`]; fsynced, so a published object survives a crash) and
//! listed and deleted through object_store's `LocalFileSystem`. The server signs requests to
//! its own `/storage/…` routes (see `http::local_storage`), which enforce the signed limits
//! while streaming to disk and expose a file under its key only once it is whole and
//! verified, with a [`record`] of its size and SHA-256 that completion trusts instead of
//! reading the file again. It offers S3's three ways in: one `PUT`, a `POST` form ([`form`])
//! and multipart uploads ([`multipart`], on disk as [`parts`] says).

mod development_key;
mod form;
mod leftovers;
mod marker;
mod multipart;
mod parts;
mod receive;
mod record;
mod seal;
mod signing;
mod staging;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use percent_encoding::utf8_percent_encode;
use secrecy::ExposeSecret;

pub use parts::MAX_PART_NUMBER;
pub use receive::{UploadRejection, body_limit};
pub use signing::{SignatureError, SignedMethod, SignedPart, SignedRequest, UrlSigner};

use super::marker::StoreMarker;
use super::{
    DownloadSpec, ListedObject, MultipartStorage, ObjectPages, SignedUpload, Storage, StorageError,
    StoredObject, UploadCheck, UploadSpec,
};
use crate::config::Settings;
use crate::domain::percent::UNRESERVED;

/// Objects per page of [`Storage::list`], as S3 lists them.
const LIST_PAGE: usize = 1000;

/// Files on this server's disk.
pub struct LocalStorage {
    store: Arc<LocalFileSystem>,
    bucket: String,
    signer: UrlSigner,
    /// `<public_url>/storage/<bucket>/`, the base of every signed URL (without the final
    /// `/`, where forms are posted).
    base_url: String,
    directory: PathBuf,
    /// `<key_prefix>/.store-id`: never listed, never served or overwritten through a URL.
    marker_key: String,
}

impl LocalStorage {
    /// Opens (creating if needed) `<root>/<bucket>` and loads the signing key.
    pub fn open(settings: &Settings, public_url: &url::Url) -> anyhow::Result<Self> {
        let local = &settings.storage.local;
        let bucket = &settings.storage.bucket;
        let directory = local.root.join(bucket);
        std::fs::create_dir_all(&directory).with_context(|| {
            format!(
                "creating storage.local.root directory {}",
                directory.display()
            )
        })?;
        let key = match &local.signing_key {
            Some(key) => key.expose_secret().as_bytes().to_vec(),
            None if settings.is_development() => development_key::load_or_create(&local.root)?,
            None => anyhow::bail!(
                "configuration key `storage.local.signing_key`: required outside the development profile"
            ),
        };
        // Absolute, so a root taken relative to an unexpected working directory is visible.
        let directory = std::fs::canonicalize(&directory)
            .with_context(|| format!("resolving {}", directory.display()))?;
        tracing::info!(
            root = %directory.parent().unwrap_or(&directory).display(),
            bucket_directory = %directory.display(),
            "local storage"
        );
        for work in [staging::STAGING_DIR, record::RECORDS_DIR] {
            std::fs::create_dir_all(directory.join(work))
                .with_context(|| format!("creating {}", directory.join(work).display()))?;
        }
        let store = LocalFileSystem::new_with_prefix(&directory)
            .with_context(|| format!("opening {}", directory.display()))?
            .with_fsync(true);
        let base = public_url.as_str().trim_end_matches('/');
        Ok(Self {
            store: Arc::new(store),
            bucket: bucket.clone(),
            signer: UrlSigner::new(&key),
            base_url: format!(
                "{base}/storage/{}/",
                utf8_percent_encode(bucket, UNRESERVED)
            ),
            directory,
            marker_key: super::marker::marker_key(&settings.storage.key_prefix),
        })
    }

    /// The bucket this storage serves.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Checks a signed request's query for `method` on `key`.
    pub fn verify(
        &self,
        method: SignedMethod,
        key: &str,
        query: &HashMap<String, String>,
    ) -> Result<SignedRequest, SignatureError> {
        if key == self.marker_key {
            return Err(SignatureError::Mismatch);
        }
        self.signer
            .verify(method, &self.bucket, key, query, Utc::now().timestamp())
    }

    /// The file holding the object under `key` (which may not exist): for serving it.
    pub fn object_file(&self, key: &str) -> Result<PathBuf, StorageError> {
        self.file_of(key)
    }

    /// Where uploads are written before they are published.
    fn staging_dir(&self) -> PathBuf {
        self.directory.join(staging::STAGING_DIR)
    }

    fn signed_url(&self, request: &SignedRequest) -> String {
        let key: Vec<String> = request
            .key
            .split('/')
            .map(|segment| utf8_percent_encode(segment, UNRESERVED).to_string())
            .collect();
        format!(
            "{}{}?{}",
            self.base_url,
            key.join("/"),
            self.signer.sign(request)
        )
    }
}

fn object_path(key: &str) -> Path {
    Path::from(key)
}

/// Back from object_store's encoded form of a path to the key the database holds.
fn storage_key_of(location: &Path) -> String {
    location
        .parts()
        .map(|part| {
            percent_encoding::percent_decode_str(part.as_ref())
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[async_trait]
impl Storage for LocalStorage {
    async fn presign_upload(&self, spec: &UploadSpec<'_>) -> Result<SignedUpload, StorageError> {
        // As on S3: without a declared length, a form whose signature caps the size.
        if spec.content_length.is_none() {
            return Ok(self.presign_form(spec));
        }
        let request = SignedRequest {
            method: SignedMethod::Put,
            bucket: self.bucket.clone(),
            key: spec.storage_key.to_owned(),
            expires: expires_at(spec.expires_in),
            max_size: Some(spec.max_size),
            length: spec.content_length,
            content_type: spec.content_type.map(|c| c.as_str().to_owned()),
            checksum_sha256: spec.checksum_sha256.map(|c| c.as_str().to_owned()),
            part: None,
        };
        let mut headers = BTreeMap::new();
        if let Some(content_type) = &request.content_type {
            headers.insert("content-type".to_owned(), content_type.clone());
        }
        if let Some(length) = request.length {
            headers.insert("content-length".to_owned(), length.to_string());
        }
        Ok(SignedUpload::Put {
            url: self.signed_url(&request),
            headers,
        })
    }

    async fn presign_download(&self, spec: &DownloadSpec<'_>) -> Result<String, StorageError> {
        Ok(self.signed_url(&SignedRequest {
            method: SignedMethod::Get,
            bucket: self.bucket.clone(),
            key: spec.storage_key.to_owned(),
            expires: expires_at(spec.expires_in),
            max_size: None,
            length: None,
            content_type: spec.content_type.map(|c| c.as_str().to_owned()),
            checksum_sha256: None,
            part: None,
        }))
    }

    async fn stat(
        &self,
        storage_key: &str,
        with_checksum: bool,
    ) -> Result<Option<StoredObject>, StorageError> {
        let Some((file, metadata)) = self.object_metadata(storage_key).await? else {
            return Ok(None);
        };
        if !with_checksum {
            return Ok(Some(StoredObject {
                size: metadata.len(),
                checksum_sha256: None,
                composite_sha256: None,
            }));
        }
        let received = record::read_back(file)
            .await
            .map_err(|e| StorageError::Unavailable(anyhow!(e).context("reading the object")))?;
        Ok(Some(StoredObject {
            size: received.size,
            checksum_sha256: Some(received.checksum()),
            composite_sha256: None,
        }))
    }

    /// Answers from the object's record (see [`record`]) without reading the object: an
    /// object that no longer matches its record is `Altered`. Objects stored before records
    /// existed have none and are read back, as [`Storage::stat`] does.
    async fn check_upload(
        &self,
        storage_key: &str,
        with_checksum: bool,
    ) -> Result<UploadCheck, StorageError> {
        self.check_against_record(storage_key, with_checksum).await
    }

    async fn seal(&self, storage_key: &str) -> Result<(), StorageError> {
        self.set_sealed(storage_key, true).await
    }

    async fn unseal(&self, storage_key: &str) -> Result<(), StorageError> {
        self.set_sealed(storage_key, false).await
    }

    async fn delete(&self, storage_key: &str) -> Result<(), StorageError> {
        match self.store.delete(&object_path(storage_key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                return Err(StorageError::Unavailable(
                    anyhow!(e).context("deleting the object"),
                ));
            }
        }
        // After the object: a record without its object is harmless, the reverse is not.
        let record = self.record_of(&self.file_of(storage_key)?)?;
        match tokio::fs::remove_file(&record).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::Unavailable(
                anyhow!(e).context("deleting the upload record"),
            )),
            _ => Ok(()),
        }
    }

    fn list<'a>(&'a self, prefix: &'a str) -> ObjectPages<'a> {
        let prefix = object_path(prefix);
        // object_store walks the directory lazily; pages of S3's size keep one listing call
        // per page in the metrics and bound what the caller holds.
        self.store
            .list(Some(&prefix))
            .chunks(LIST_PAGE)
            .map(|page| {
                let page: Vec<_> = page.into_iter().collect::<Result<_, _>>().map_err(|e| {
                    StorageError::Unavailable(anyhow!(e).context("listing objects"))
                })?;
                Ok(page
                    .into_iter()
                    .map(|meta| ListedObject {
                        storage_key: storage_key_of(&meta.location),
                        last_modified: meta.last_modified,
                    })
                    .filter(|object| object.storage_key != self.marker_key)
                    .collect())
            })
            .boxed()
    }

    async fn sweep_leftovers(
        &self,
        before: chrono::DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<String>, StorageError> {
        self.sweep_working_files(before.into(), dry_run).await
    }

    fn multipart(&self) -> Option<&dyn MultipartStorage> {
        Some(self)
    }

    fn marker(&self) -> Option<&dyn StoreMarker> {
        Some(self)
    }

    async fn check_ready(&self) -> Result<(), StorageError> {
        let metadata = tokio::fs::metadata(&self.directory)
            .await
            .map_err(|e| StorageError::Unavailable(anyhow!(e).context("storage directory")))?;
        if metadata.is_dir() {
            Ok(())
        } else {
            Err(StorageError::Unavailable(anyhow!(
                "storage directory is not a directory"
            )))
        }
    }
}

fn expires_at(expires_in: std::time::Duration) -> i64 {
    Utc::now().timestamp() + i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX / 2)
}
