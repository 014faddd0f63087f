//! The local backend: objects are files under `storage.local.root`, written and read through
//! object_store's `LocalFileSystem`. The server signs URLs to its own `/storage/…` routes
//! (see `http::local_storage`), which enforce the signed limits while streaming to disk and
//! expose a file under its key only once it is whole and verified.

mod marker;
mod signing;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

pub use signing::{SignatureError, SignedMethod, SignedRequest, UrlSigner};

use super::marker::StoreMarker;
use super::{
    DownloadSpec, ListedObject, SignedUpload, Storage, StorageError, StoredObject, UploadSpec,
};
use crate::config::Settings;
use crate::domain::Sha256Checksum;

/// Characters of a key segment that stay as they are in a URL path.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// File under the root holding the generated development signing key.
const GENERATED_KEY_FILE: &str = ".signing-key";
/// Upload parts in flight at once while streaming to disk; bounds memory per upload.
const MAX_PARTS_IN_FLIGHT: usize = 4;

/// Why an upload to a local signed URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadRejection {
    #[error("the body exceeds the signed limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the body has {received} bytes but {expected} were declared")]
    LengthMismatch { expected: u64, received: u64 },
    #[error("the body does not match the declared SHA-256 checksum")]
    ChecksumMismatch,
    #[error("the Content-Type header does not match the signed content type")]
    ContentTypeMismatch,
    #[error("the request body could not be read")]
    BodyRead(#[source] std::io::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A download ready to stream.
pub struct Download {
    pub size: u64,
    pub body: BoxStream<'static, Result<Bytes, StorageError>>,
}

/// Files on this server's disk.
pub struct LocalStorage {
    store: Arc<LocalFileSystem>,
    bucket: String,
    signer: UrlSigner,
    /// `<public_url>/storage/<bucket>/`, the base of every signed URL.
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
            None if settings.is_development() => development_key(&local.root)?,
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
        let store = LocalFileSystem::new_with_prefix(&directory)
            .with_context(|| format!("opening {}", directory.display()))?;
        let base = public_url.as_str().trim_end_matches('/');
        Ok(Self {
            store: Arc::new(store),
            bucket: bucket.clone(),
            signer: UrlSigner::new(&key),
            base_url: format!(
                "{base}/storage/{}/",
                utf8_percent_encode(bucket, PATH_SEGMENT)
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
        if signed.content_type.is_some() && signed.content_type.as_deref() != content_type {
            return Err(UploadRejection::ContentTypeMismatch);
        }
        let limit = signed.length.or(signed.max_size).unwrap_or(0);
        let upload = self
            .store
            .put_multipart(&object_path(&signed.key))
            .await
            .map_err(|e| StorageError::Other(anyhow!(e).context("starting the upload")))?;
        let mut writer = WriteMultipart::new(upload);
        match write_body(&mut writer, body, limit).await {
            Ok((received, checksum)) => {
                let verdict = verify_upload(signed, received, &checksum);
                if let Err(rejection) = verdict {
                    let _ = writer.abort().await;
                    return Err(rejection);
                }
                writer
                    .finish()
                    .await
                    .map_err(|e| StorageError::Other(anyhow!(e).context("finishing the upload")))?;
                Ok(StoredObject {
                    size: received,
                    checksum_sha256: Some(checksum),
                })
            }
            Err(rejection) => {
                let _ = writer.abort().await;
                Err(rejection)
            }
        }
    }

    /// The stored object, ready to stream, or `None` when nothing is there.
    pub async fn open_download(&self, key: &str) -> Result<Option<Download>, StorageError> {
        match self.store.get(&object_path(key)).await {
            Ok(result) => Ok(Some(Download {
                size: result.meta.size,
                body: result
                    .into_stream()
                    .map_err(|e| StorageError::Unavailable(anyhow!(e)))
                    .boxed(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StorageError::Unavailable(
                anyhow!(e).context("opening the object"),
            )),
        }
    }

    fn signed_url(&self, request: &SignedRequest) -> String {
        let key: Vec<String> = request
            .key
            .split('/')
            .map(|segment| utf8_percent_encode(segment, PATH_SEGMENT).to_string())
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

async fn write_body<S>(
    writer: &mut WriteMultipart,
    mut body: S,
    limit: u64,
) -> Result<(u64, Sha256Checksum), UploadRejection>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(UploadRejection::BodyRead)?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(UploadRejection::TooLarge { limit });
        }
        hasher.update(&chunk);
        writer
            .wait_for_capacity(MAX_PARTS_IN_FLIGHT)
            .await
            .map_err(|e| StorageError::Other(anyhow!(e).context("writing the upload")))?;
        writer.put(chunk);
    }
    let checksum =
        Sha256Checksum::from_digest(&hasher.finalize()).expect("SHA-256 digests are 32 bytes");
    Ok((received, checksum))
}

fn verify_upload(
    signed: &SignedRequest,
    received: u64,
    checksum: &Sha256Checksum,
) -> Result<(), UploadRejection> {
    if let Some(expected) = signed.length
        && expected != received
    {
        return Err(UploadRejection::LengthMismatch { expected, received });
    }
    if signed
        .checksum_sha256
        .as_deref()
        .is_some_and(|expected| expected != checksum.as_str())
    {
        return Err(UploadRejection::ChecksumMismatch);
    }
    Ok(())
}

/// The development signing key: read from `<root>/.signing-key`, generated on first use.
fn development_key(root: &FsPath) -> anyhow::Result<Vec<u8>> {
    let path = root.join(GENERATED_KEY_FILE);
    if let Ok(key) = std::fs::read_to_string(&path) {
        return Ok(key.trim().as_bytes().to_vec());
    }
    let key = hex::encode(rand::random::<[u8; 32]>());
    write_private_file(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "storage.local.signing_key is not set: generated a development key; set the key explicitly outside development"
    );
    Ok(key.into_bytes())
}

fn write_private_file(path: &FsPath, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[async_trait]
impl Storage for LocalStorage {
    async fn presign_upload(&self, spec: &UploadSpec<'_>) -> Result<SignedUpload, StorageError> {
        let request = SignedRequest {
            method: SignedMethod::Put,
            bucket: self.bucket.clone(),
            key: spec.storage_key.to_owned(),
            expires: expires_at(spec.expires_in),
            max_size: Some(spec.max_size),
            length: spec.content_length,
            content_type: spec.content_type.map(|c| c.as_str().to_owned()),
            checksum_sha256: spec.checksum_sha256.map(|c| c.as_str().to_owned()),
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
        }))
    }

    async fn stat(
        &self,
        storage_key: &str,
        with_checksum: bool,
    ) -> Result<Option<StoredObject>, StorageError> {
        let Some(download) = self.open_download(storage_key).await? else {
            return Ok(None);
        };
        let size = download.size;
        let checksum_sha256 = if with_checksum {
            let mut hasher = Sha256::new();
            let mut body = download.body;
            while let Some(chunk) = body.next().await {
                hasher.update(&chunk?);
            }
            Sha256Checksum::from_digest(&hasher.finalize())
        } else {
            None
        };
        Ok(Some(StoredObject {
            size,
            checksum_sha256,
        }))
    }

    async fn delete(&self, storage_key: &str) -> Result<(), StorageError> {
        match self.store.delete(&object_path(storage_key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StorageError::Unavailable(
                anyhow!(e).context("deleting the object"),
            )),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        let prefix = object_path(prefix);
        let listed: Vec<ListedObject> = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| ListedObject {
                // Back from object_store's encoded form to the key the database holds.
                storage_key: meta
                    .location
                    .parts()
                    .map(|part| {
                        percent_encoding::percent_decode_str(part.as_ref())
                            .decode_utf8_lossy()
                            .into_owned()
                    })
                    .collect::<Vec<_>>()
                    .join("/"),
                last_modified: meta.last_modified,
            })
            .try_collect()
            .await
            .map_err(|e| StorageError::Unavailable(anyhow!(e).context("listing objects")))?;
        Ok(listed
            .into_iter()
            .filter(|object| object.storage_key != self.marker_key)
            .collect())
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
