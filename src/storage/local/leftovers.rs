//! What a crash leaves in the local backend's working directories, and its removal by the
//! orphan scan (`sweep --orphans`):
//! - `~staging/`: files of uploads whose process died while writing them (an upload that
//!   fails or whose request goes away removes its own);
//! - `~records/`: records of objects that are gone (a crash between writing the record and
//!   publishing the object, or an object removed behind the server's back).
//!
//! Only what has not been modified since `before` (the orphan scan's `pending_grace` cutoff)
//! is touched: an upload still streaming rewrites its staging file all the time, and a
//! record is written just before its object is published. A record whose object exists is
//! kept even when it no longer matches it: it is what keeps a file altered behind the
//! server's back from being completed. Directories are left in place (a record being written
//! may be about to use one).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::anyhow;

use super::LocalStorage;
use super::record::RECORDS_DIR;
use super::staging::{STAGING_DIR, blocking};
use crate::storage::StorageError;

impl LocalStorage {
    /// Removes (with `dry_run`, only finds) the leftovers older than `before`; returns their
    /// paths relative to the bucket directory.
    pub(super) async fn sweep_working_files(
        &self,
        before: SystemTime,
        dry_run: bool,
    ) -> Result<Vec<String>, StorageError> {
        let directory = self.directory.clone();
        blocking(move || {
            let mut found = stale_staging_files(&directory, before)?;
            found.extend(orphaned_records(&directory, before)?);
            if !dry_run {
                for path in &found {
                    match fs::remove_file(directory.join(path)) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                        _ => {}
                    }
                }
            }
            Ok(found
                .iter()
                .map(|path| path.to_string_lossy().into_owned())
                .collect())
        })
        .await
        .map_err(|e| StorageError::Unavailable(anyhow!(e).context("sweeping working files")))
    }
}

/// Staging files not written to since `before`, relative to `directory`.
fn stale_staging_files(directory: &Path, before: SystemTime) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in read_dir(&directory.join(STAGING_DIR))? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if metadata.is_file() && metadata.modified()? < before {
            found.push(Path::new(STAGING_DIR).join(entry.file_name()));
        }
    }
    Ok(found)
}

/// Records older than `before` whose object file does not exist, relative to `directory`.
fn orphaned_records(directory: &Path, before: SystemTime) -> io::Result<Vec<PathBuf>> {
    let records = directory.join(RECORDS_DIR);
    let mut found = Vec::new();
    let mut pending = vec![records.clone()];
    while let Some(dir) = pending.pop() {
        for entry in read_dir(&dir)? {
            let entry = entry?;
            let metadata = entry.metadata()?;
            let path = entry.path();
            if metadata.is_dir() {
                pending.push(path);
                continue;
            }
            let Ok(relative) = path.strip_prefix(&records) else {
                continue;
            };
            let object = directory.join(relative);
            let object_exists = match fs::symlink_metadata(&object) {
                Ok(_) => true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            if !object_exists && metadata.is_file() && metadata.modified()? < before {
                found.push(Path::new(RECORDS_DIR).join(relative));
            }
        }
    }
    Ok(found)
}

/// The entries of `dir`; none when it does not exist.
fn read_dir(dir: &Path) -> io::Result<Vec<io::Result<fs::DirEntry>>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}
