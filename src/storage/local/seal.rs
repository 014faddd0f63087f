//! Sealing: a completed asset's file (and its upload record, see `record`) is made
//! read-only, and nothing an upload URL sends may replace a read-only file. The mark lives on the file itself, so every replica sharing the
//! volume sees it at once and a delete (the directory is writable) still removes it.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::{LocalStorage, UploadRejection, object_path};
use crate::storage::StorageError;

impl LocalStorage {
    /// Where the object under `key` lives on disk.
    pub(super) fn file_of(&self, key: &str) -> Result<PathBuf, StorageError> {
        self.store
            .path_to_filesystem(&object_path(key))
            .map_err(|e| StorageError::Other(anyhow!(e).context("locating the object")))
    }

    /// Refuses a write to `key` once its asset is complete.
    pub(super) async fn refuse_if_sealed(&self, key: &str) -> Result<(), UploadRejection> {
        let file = self.file_of(key)?;
        match tokio::fs::metadata(&file).await {
            Ok(metadata) if metadata.permissions().readonly() => Err(UploadRejection::Sealed),
            _ => Ok(()),
        }
    }

    /// Makes the object under `key` and its record read-only (or writable again); nothing
    /// stored is no error.
    pub(super) async fn set_sealed(&self, key: &str, sealed: bool) -> Result<(), StorageError> {
        let file = self.file_of(key)?;
        let record = self.record_of(&file)?;
        set_read_only(&file, sealed).await?;
        set_read_only(&record, sealed).await
    }
}

/// Makes `file` read-only (or writable again); a missing file is no error.
async fn set_read_only(file: &Path, sealed: bool) -> Result<(), StorageError> {
    let failed = |e: std::io::Error| {
        StorageError::Unavailable(anyhow!(e).context("changing the object's permissions"))
    };
    let mut permissions = match tokio::fs::metadata(file).await {
        Ok(metadata) => metadata.permissions(),
        // Nothing stored: nothing to seal, and completion reports it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(failed(e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        permissions.set_mode(if sealed { 0o444 } else { 0o644 });
    }
    #[cfg(not(unix))]
    permissions.set_readonly(sealed);
    tokio::fs::set_permissions(file, permissions)
        .await
        .map_err(failed)
}
