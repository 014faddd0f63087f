//! The record of an upload: the size and SHA-256 computed while its bytes streamed in, so
//! completion never reads the object back. It lives at `<bucket dir>/~records/<the object's
//! path>`, is written (fsynced, renamed into place) after the whole body arrived, matched
//! what was signed and was fsynced, and *before* the rename that publishes the object: there
//! is never a record of a partial file, and a crash between the two leaves a record that
//! names another file, which completion refuses (the client uploads again).
//!
//! A record names the file it describes by inode, size and modification time (a rename
//! keeps all three, sealing's `chmod` too). A file truncated, rewritten or replaced behind
//! the server's back no longer matches and is never completed; so is one whose record was
//! edited, since only the record is trusted. What it cannot see: a rewrite of the same
//! size that restores the modification time, or lands within the filesystem's timestamp
//! granularity of the upload's last write. Objects stored before records existed have
//! none; completion then reads them back to hash them, as it always did.

use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::anyhow;
use serde::{Deserialize, Serialize};

use super::LocalStorage;
use super::staging::{blocking, staging_path, sync_dir};
use crate::storage::digest::{Digested, HashingCounter, copy_hashed};
use crate::storage::{Storage, StorageError, StoredObject, UploadCheck};

/// Directory of the records, directly under the bucket directory (outside `key_prefix`,
/// like `~multipart`, so `Storage::list` and the orphan scan never see a record).
pub(super) const RECORDS_DIR: &str = "~records";
/// Bytes read at a time when an object without a record is hashed.
const READ_BACK_CHUNK: usize = 8 * 1024 * 1024;

/// What an upload delivered, and which file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Record {
    size: u64,
    /// Hex SHA-256 of the bytes.
    sha256: String,
    inode: u64,
    modified_secs: u64,
    modified_nanos: u32,
}

impl Record {
    /// The record of `received`, written to the file `metadata` describes.
    pub fn of(received: &Digested, metadata: &Metadata) -> Self {
        let (modified_secs, modified_nanos) = modified(metadata);
        Self {
            size: received.size,
            sha256: hex::encode(received.digest),
            inode: inode(metadata),
            modified_secs,
            modified_nanos,
        }
    }

    /// How the file `metadata` describes differs from the one recorded; `None` when it is
    /// that file, as it was written.
    fn mismatch(&self, metadata: &Metadata) -> Option<String> {
        if metadata.len() != self.size {
            return Some(format!(
                "the stored file has {} bytes but {} were uploaded",
                metadata.len(),
                self.size
            ));
        }
        if inode(metadata) != self.inode
            || modified(metadata) != (self.modified_secs, self.modified_nanos)
        {
            return Some("the stored file was modified or replaced after its upload".into());
        }
        None
    }

    /// The object as recorded; `None` when the record's checksum is not a SHA-256.
    fn stored(&self) -> Option<StoredObject> {
        let digest: [u8; 32] = hex::decode(&self.sha256).ok()?.try_into().ok()?;
        Some(StoredObject {
            size: self.size,
            checksum_sha256: crate::domain::Sha256Checksum::from_digest(&digest),
            composite_sha256: None,
        })
    }
}

/// What a record says about the object it sits beside.
enum Recorded {
    /// No record: an object stored before records existed (or by hand).
    None,
    /// The object is the recorded file, as uploaded.
    Intact(StoredObject),
    /// The object or its record changed since the upload; says how.
    Altered(String),
}

impl LocalStorage {
    /// The metadata of the object under `key`, or `None` when nothing is there.
    pub(super) async fn object_metadata(
        &self,
        key: &str,
    ) -> Result<Option<(PathBuf, std::fs::Metadata)>, StorageError> {
        let file = self.file_of(key)?;
        match tokio::fs::metadata(&file).await {
            Ok(metadata) if metadata.is_file() => Ok(Some((file, metadata))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::Unavailable(
                anyhow!(e).context("reading the object's metadata"),
            )),
        }
    }

    /// [`crate::storage::Storage::check_upload`]: the object as its record describes it.
    pub(super) async fn check_against_record(
        &self,
        key: &str,
        with_checksum: bool,
    ) -> Result<UploadCheck, StorageError> {
        let Some((file, metadata)) = self.object_metadata(key).await? else {
            return Ok(UploadCheck::Missing);
        };
        Ok(match self.recorded(&file, &metadata).await? {
            Recorded::Intact(stored) => UploadCheck::Stored(stored),
            Recorded::Altered(how) => UploadCheck::Altered(how),
            Recorded::None => match self.stat(key, with_checksum).await? {
                Some(stored) => UploadCheck::Stored(stored),
                None => UploadCheck::Missing,
            },
        })
    }

    /// Where the record of the object in `file` lives.
    pub(super) fn record_of(&self, file: &Path) -> Result<PathBuf, StorageError> {
        let relative = file
            .strip_prefix(&self.directory)
            .map_err(|e| StorageError::Other(anyhow!(e).context("locating the record")))?;
        Ok(self.directory.join(RECORDS_DIR).join(relative))
    }

    /// Stores `record` for the object in `file` (which need not exist yet): fsynced, then
    /// renamed into place, so a record is whole or absent.
    pub(super) async fn write_record(&self, file: &Path, record: &Record) -> io::Result<()> {
        let target = self.record_of(file).map_err(io::Error::other)?;
        let parent = target.parent().map(Path::to_path_buf);
        let temp = staging_path(&self.staging_dir());
        let body = serde_json::to_vec(record).map_err(io::Error::other)?;
        let created = parent.clone();
        // All in one blocking task, which runs to its end even if the request goes away.
        blocking(move || {
            let written = (|| {
                std::fs::write(&temp, &body)?;
                std::fs::File::open(&temp)?.sync_all()?;
                if let Some(parent) = &created {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::rename(&temp, &target)
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
            written
        })
        .await?;
        match parent {
            Some(parent) => sync_dir(parent).await,
            None => Ok(()),
        }
    }

    /// What the record of the object in `file` (described by `metadata`) says.
    async fn recorded(&self, file: &Path, metadata: &Metadata) -> Result<Recorded, StorageError> {
        let path = self.record_of(file)?;
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Recorded::None),
            Err(e) => {
                return Err(StorageError::Unavailable(
                    anyhow!(e).context("reading the upload record"),
                ));
            }
        };
        let unreadable = || Recorded::Altered("the upload record is unreadable".into());
        let Ok(record) = serde_json::from_slice::<Record>(&bytes) else {
            return Ok(unreadable());
        };
        Ok(match (record.mismatch(metadata), record.stored()) {
            (Some(how), _) => Recorded::Altered(how),
            (None, Some(stored)) => Recorded::Intact(stored),
            (None, None) => unreadable(),
        })
    }
}

/// Size and SHA-256 of the file at `path`, read from disk: for objects without a record.
pub(super) async fn read_back(path: PathBuf) -> io::Result<Digested> {
    blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut counter = HashingCounter::new();
        let mut buffer = vec![0; READ_BACK_CHUNK];
        copy_hashed(&mut file, &mut io::sink(), &mut counter, &mut buffer)?;
        Ok(counter.finish())
    })
    .await
}

fn modified(metadata: &Metadata) -> (u64, u32) {
    metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or((0, 0), |since| (since.as_secs(), since.subsec_nanos()))
}

#[cfg(unix)]
fn inode(metadata: &Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(metadata)
}

#[cfg(not(unix))]
fn inode(_metadata: &Metadata) -> u64 {
    0
}
