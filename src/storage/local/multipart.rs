//! Multipart uploads on the local backend, with S3's contract: `start` makes an upload id,
//! each part is a signed `PUT /storage/{bucket}/{key}?partNumber=N&uploadId=…` of its exact
//! size (stored by [`LocalStorage::receive_part`]), and `complete` assembles the parts into
//! the object atomically. The layout on disk is in `parts`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;

use super::parts::{self, MAX_PART_NUMBER, PartFile, disk_error};
use super::record::Record;
use super::staging::{TempFile, staging_path};
use super::{LocalStorage, SignedMethod, SignedPart, SignedRequest, expires_at};
use crate::domain::ContentType;
use crate::storage::digest::{Digested, HashingCounter, copy_hashed};
use crate::storage::{
    CompleteError, ListedUpload, MultipartStorage, PartRef, PartSpec, PresignedPart, StorageError,
    StoredPart,
};

/// Bytes read from a part file at a time while assembling.
const COPY_CHUNK: usize = 8 * 1024 * 1024;

#[async_trait]
impl MultipartStorage for LocalStorage {
    async fn start(
        &self,
        storage_key: &str,
        _content_type: Option<&ContentType>,
        // Every part's SHA-256 is kept (it names the part's file) whether or not it is signed.
        _part_checksums: bool,
    ) -> Result<String, StorageError> {
        // The type is bound into each download URL instead, as for single uploads.
        if storage_key == self.marker_key {
            return Err(StorageError::Other(anyhow!(
                "the store marker cannot be uploaded"
            )));
        }
        parts::create_upload(&self.uploads_dir(), storage_key)
            .await
            .map_err(disk_error)
    }

    async fn presign_part(
        &self,
        storage_key: &str,
        upload_id: &str,
        part: &PartSpec<'_>,
        expires_in: Duration,
    ) -> Result<PresignedPart, StorageError> {
        if !(1..=MAX_PART_NUMBER).contains(&part.number) || self.upload_dir(upload_id).is_none() {
            return Err(StorageError::Other(anyhow!(
                "no part {} of a local upload can be signed",
                part.number
            )));
        }
        // The checksum is signed into the URL, not sent as a header.
        let url = self.signed_url(&SignedRequest {
            method: SignedMethod::Put,
            bucket: self.bucket.clone(),
            key: storage_key.to_owned(),
            expires: expires_at(expires_in),
            max_size: None,
            length: Some(part.size),
            content_type: None,
            checksum_sha256: part.checksum_sha256.map(|c| c.as_str().to_owned()),
            part: Some(SignedPart {
                number: part.number,
                upload_id: upload_id.to_owned(),
            }),
        });
        Ok(PresignedPart {
            url,
            headers: Default::default(),
        })
    }

    async fn list_parts(
        &self,
        _storage_key: &str,
        upload_id: &str,
    ) -> Result<Vec<StoredPart>, StorageError> {
        let Some(dir) = self.upload_dir(upload_id) else {
            return Ok(Vec::new());
        };
        let stored = parts::read_parts(&dir).await.map_err(disk_error)?;
        Ok(stored
            .iter()
            .map(|part| StoredPart {
                part_number: part.number,
                etag: Some(part.etag()),
                size: part.size,
                checksum_sha256: part.checksum(),
            })
            .collect())
    }

    async fn complete(
        &self,
        storage_key: &str,
        upload_id: &str,
        parts: &[PartRef],
    ) -> Result<(), CompleteError> {
        let dir = self
            .upload_dir(upload_id)
            .ok_or(CompleteError::UploadGone)?;
        let key = parts::read_key(&dir).await.map_err(disk_error)?;
        if key.as_deref() != Some(storage_key) || storage_key == self.marker_key {
            return Err(CompleteError::UploadGone);
        }
        let stored = parts::read_parts(&dir).await.map_err(disk_error)?;
        let chosen = choose_parts(parts, &stored).map_err(CompleteError::Rejected)?;
        self.assemble(storage_key, &chosen).await?;
        if let Err(error) = tokio::fs::remove_dir_all(&dir).await {
            // The object is whole; the leftover parts are for the orphan scan.
            tracing::warn!(upload_id, error = %error, "completed an upload but kept its parts");
        }
        Ok(())
    }

    async fn abort(&self, _storage_key: &str, upload_id: &str) -> Result<(), StorageError> {
        // The id alone names the upload; one of another form was never started here.
        let Some(dir) = self.upload_dir(upload_id) else {
            return Ok(());
        };
        match tokio::fs::remove_dir_all(&dir).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(disk_error(e)),
            _ => Ok(()),
        }
    }

    async fn list_uploads(&self) -> Result<Vec<ListedUpload>, StorageError> {
        let mut entries = match tokio::fs::read_dir(self.uploads_dir()).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(disk_error(e)),
        };
        let mut uploads = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(disk_error)? {
            let Some(upload_id) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some(dir) = self.upload_dir(&upload_id) else {
                continue;
            };
            // A directory's time changes with every part renamed into it.
            let modified = match entry.metadata().await.and_then(|m| m.modified()) {
                Ok(modified) => modified,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(disk_error(e)),
            };
            uploads.push(ListedUpload {
                storage_key: parts::read_key(&dir).await.map_err(disk_error)?,
                upload_id,
                last_modified: modified.into(),
            });
        }
        Ok(uploads)
    }
}

impl LocalStorage {
    /// Concatenates `chosen` parts, in order, into the object under `storage_key`, hashing
    /// them on the way: a staging file, fsynced and renamed into place with its record (see
    /// `record`), so the object appears whole or not at all and completion need not read it.
    async fn assemble(&self, storage_key: &str, chosen: &[PartFile]) -> Result<(), CompleteError> {
        let temp = staging_path(&self.staging_dir());
        let parts: Vec<(u32, PathBuf)> =
            chosen.iter().map(|p| (p.number, p.path.clone())).collect();
        let (file, metadata, received) =
            tokio::task::spawn_blocking(move || concatenate(temp, &parts))
                .await
                .map_err(|e| StorageError::Other(anyhow!(e).context("assembling the parts")))??;
        self.publish(storage_key, file, &Record::of(&received, &metadata))
            .await
            .map_err(disk_error)?;
        Ok(())
    }
}

/// Writes the parts at `parts` one after the other into a new file at `temp`, fsynced;
/// returns it, its metadata and what it holds.
fn concatenate(
    temp: PathBuf,
    parts: &[(u32, PathBuf)],
) -> Result<(TempFile, std::fs::Metadata, Digested), CompleteError> {
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(disk_error)?;
    let file = TempFile::new(temp);
    let mut counter = HashingCounter::new();
    let mut buffer = vec![0; COPY_CHUNK];
    for (number, path) in parts {
        let mut part = match std::fs::File::open(path) {
            Ok(part) => part,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CompleteError::Rejected(format!(
                    "part {number} was replaced while the upload was being completed"
                )));
            }
            Err(e) => return Err(disk_error(e).into()),
        };
        copy_hashed(&mut part, &mut out, &mut counter, &mut buffer).map_err(disk_error)?;
    }
    out.sync_all().map_err(disk_error)?;
    let metadata = out.metadata().map_err(disk_error)?;
    Ok((file, metadata, counter.finish()))
}

/// The stored files to assemble `given` from, in order, or what is wrong with the list:
/// parts numbered 1 to n, each once and as stored (ETag), every one but the last of the
/// first part's size and the last no larger.
fn choose_parts(given: &[PartRef], stored: &[PartFile]) -> Result<Vec<PartFile>, String> {
    let mut numbers: Vec<u32> = given.iter().map(|p| p.part_number).collect();
    numbers.sort_unstable();
    let mut problems = Vec::new();
    if numbers.is_empty() {
        problems.push("no parts were given".to_owned());
    }
    if numbers.windows(2).any(|w| w[0] == w[1]) {
        problems.push("a part is listed twice".to_owned());
    }
    numbers.dedup();
    let last = numbers.last().copied().unwrap_or(0);
    let missing: Vec<String> = (1..last)
        .filter(|n| numbers.binary_search(n).is_err())
        .map(|n| n.to_string())
        .collect();
    if !missing.is_empty() {
        problems.push(format!("missing parts: {}", missing.join(", ")));
    }
    let unquoted = |etag: &str| etag.trim_matches('"').to_ascii_lowercase();
    let mut chosen: Vec<PartFile> = Vec::new();
    for number in &numbers {
        let etag = given
            .iter()
            .find(|p| p.part_number == *number)
            .map(|p| unquoted(&p.etag))
            .unwrap_or_default();
        match stored.iter().find(|s| s.number == *number) {
            None => problems.push(format!("part {number} is not in storage")),
            Some(part) if part.digest.to_ascii_lowercase() != etag => problems.push(format!(
                "part {number}: the ETag is not the one storage holds"
            )),
            Some(part) => chosen.push(part.clone()),
        }
    }
    problems.extend(size_problems(&chosen));
    if problems.is_empty() {
        Ok(chosen)
    } else {
        Err(problems.join("; "))
    }
}

/// Parts (in order) whose size breaks the layout: all but the last as large as the first.
fn size_problems(chosen: &[PartFile]) -> Vec<String> {
    let Some((first, rest)) = chosen.split_first() else {
        return Vec::new();
    };
    let part_size = first.size;
    let mut problems = Vec::new();
    for (i, part) in rest.iter().enumerate() {
        let is_last = i + 1 == rest.len();
        if (!is_last && part.size != part_size) || (is_last && part.size > part_size) {
            problems.push(format!(
                "part {} has {} bytes, but parts have {part_size}",
                part.number, part.size
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests;
