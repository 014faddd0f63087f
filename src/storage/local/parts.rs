//! Multipart uploads on disk. Each upload is a directory `<bucket dir>/~multipart/<upload_id>/`
//! holding `key` (the storage key it is for) and one file per stored part,
//! `part-<number>.<hex SHA-256>`: the name carries the part's ETag, so a part and its ETag
//! appear together, in one rename, or not at all.
//!
//! `~` cannot occur in `storage.key_prefix`, the first segment of every storage key, so no
//! object key reaches this directory, and `Storage::list` (which walks only `key_prefix`)
//! never sees it: neither the orphan scan of objects nor the store marker is affected.

use std::path::{Path as FsPath, PathBuf};
use std::time::SystemTime;

use anyhow::anyhow;
use bytes::Bytes;
use futures::Stream;

use super::receive::{UploadRejection, body_limit, verify_upload, write_body};
use super::staging::{StagingFile, staging_path};
use super::{LocalStorage, SignedRequest};
use crate::domain::Sha256Checksum;
use crate::storage::{StorageError, StoredPart};

/// Directory of the multipart uploads, directly under the bucket directory.
pub(super) const UPLOADS_DIR: &str = "~multipart";
/// File in an upload's directory naming the storage key the upload is for.
const KEY_FILE: &str = "key";
/// Part numbers S3 accepts, and so this backend.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// Bytes of randomness in an upload id (hex-encoded, so ids are 32 characters).
const UPLOAD_ID_BYTES: usize = 16;

/// A part stored on disk.
#[derive(Debug, Clone)]
pub(super) struct PartFile {
    pub number: u32,
    /// Hex SHA-256 of the part: its ETag, unquoted.
    pub digest: String,
    pub size: u64,
    pub modified: SystemTime,
    pub path: PathBuf,
}

impl PartFile {
    /// The ETag clients see: the quoted hex SHA-256 (S3 quotes its MD5 the same way).
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.digest)
    }

    /// The part's SHA-256 in the API's base64 form.
    pub fn checksum(&self) -> Option<Sha256Checksum> {
        hex::decode(&self.digest)
            .ok()
            .and_then(|digest| Sha256Checksum::from_digest(&digest))
    }
}

/// A fresh upload id: random and unguessable.
pub(super) fn new_upload_id() -> String {
    hex::encode(rand::random::<[u8; UPLOAD_ID_BYTES]>())
}

/// Whether `upload_id` has the form ids have, so it is safe as a path segment.
fn is_upload_id(upload_id: &str) -> bool {
    upload_id.len() == UPLOAD_ID_BYTES * 2
        && upload_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl LocalStorage {
    /// The directory of multipart uploads.
    pub(super) fn uploads_dir(&self) -> PathBuf {
        self.directory.join(UPLOADS_DIR)
    }

    /// The directory of upload `upload_id`, or `None` when no upload can have that id.
    pub(super) fn upload_dir(&self, upload_id: &str) -> Option<PathBuf> {
        is_upload_id(upload_id).then(|| self.uploads_dir().join(upload_id))
    }

    /// Stores one part of a multipart upload, as a signed `PUT` of its exact size: streamed
    /// to a temporary file in the upload's directory (`tmp-…`), then renamed into place.
    pub async fn receive_part<S>(
        &self,
        signed: &SignedRequest,
        body: S,
    ) -> Result<StoredPart, UploadRejection>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin,
    {
        let part = signed.part.as_ref().ok_or(UploadRejection::NoSuchUpload)?;
        if !(1..=MAX_PART_NUMBER).contains(&part.number) {
            return Err(UploadRejection::InvalidPartNumber(part.number));
        }
        let dir = self
            .upload_dir(&part.upload_id)
            .ok_or(UploadRejection::NoSuchUpload)?;
        if read_key(&dir).await.map_err(disk_error)?.as_deref() != Some(signed.key.as_str()) {
            return Err(UploadRejection::NoSuchUpload);
        }
        let file = match StagingFile::create(staging_path(&dir)).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(UploadRejection::NoSuchUpload);
            }
            Err(e) => return Err(disk_error(e).into()),
        };
        let (temp, _, received) = write_body(file, body, body_limit(signed)).await?;
        verify_upload(signed, &received)?;
        let digest = hex::encode(received.digest);
        let name = part_file_name(part.number, &digest);
        if let Err(e) = tokio::fs::rename(temp.path(), dir.join(&name)).await {
            return Err(match e.kind() {
                std::io::ErrorKind::NotFound => UploadRejection::NoSuchUpload,
                _ => disk_error(e).into(),
            });
        }
        temp.keep();
        // A part sent again replaces the earlier one.
        for earlier in read_parts(&dir).await.map_err(disk_error)? {
            if earlier.number == part.number && earlier.digest != digest {
                let _ = tokio::fs::remove_file(&earlier.path).await;
            }
        }
        Ok(StoredPart {
            part_number: part.number,
            etag: Some(format!("\"{digest}\"")),
            size: received.size,
            checksum_sha256: Some(received.checksum()),
        })
    }
}

/// Creates the directory of a new upload for `storage_key` under `uploads`; returns its id.
pub(super) async fn create_upload(uploads: &FsPath, storage_key: &str) -> std::io::Result<String> {
    tokio::fs::create_dir_all(uploads).await?;
    let upload_id = new_upload_id();
    let dir = uploads.join(&upload_id);
    tokio::fs::create_dir(&dir).await?;
    tokio::fs::write(dir.join(KEY_FILE), storage_key).await?;
    Ok(upload_id)
}

/// The storage key upload directory `dir` is for; `None` when it (or its key) is gone.
pub(super) async fn read_key(dir: &FsPath) -> std::io::Result<Option<String>> {
    match tokio::fs::read_to_string(dir.join(KEY_FILE)).await {
        Ok(key) => Ok(Some(key)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The parts in upload directory `dir`, by part number; for a part stored twice at once,
/// only the newer. Empty when the directory is gone.
pub(super) async fn read_parts(dir: &FsPath) -> std::io::Result<Vec<PartFile>> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut parts: Vec<PartFile> = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let Some((number, digest)) = name.to_str().and_then(parse_part_file_name) else {
            continue;
        };
        let metadata = match entry.metadata().await {
            Ok(metadata) => metadata,
            // Replaced by a newer copy of the part since the listing began.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        parts.push(PartFile {
            number,
            digest: digest.to_owned(),
            size: metadata.len(),
            modified: metadata.modified()?,
            path: entry.path(),
        });
    }
    parts.sort_by(|a, b| a.number.cmp(&b.number).then(b.modified.cmp(&a.modified)));
    parts.dedup_by_key(|part| part.number);
    Ok(parts)
}

fn part_file_name(number: u32, digest: &str) -> String {
    format!("part-{number:05}.{digest}")
}

fn parse_part_file_name(name: &str) -> Option<(u32, &str)> {
    let (number, digest) = name.strip_prefix("part-")?.split_once('.')?;
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((number.parse().ok()?, digest))
}

/// A failure of the disk under the uploads directory.
pub(super) fn disk_error(error: std::io::Error) -> StorageError {
    StorageError::Unavailable(anyhow!(error).context("multipart upload storage"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_file_names_round_trip_and_nothing_else_parses() {
        let digest = "ab".repeat(32);
        assert_eq!(
            parse_part_file_name(&part_file_name(42, &digest)),
            Some((42, digest.as_str()))
        );
        for name in [
            "key",
            "tmp-0123",
            "part-00001",
            "part-x.abcd",
            &format!("part-00001.{}", "z".repeat(64)),
        ] {
            assert_eq!(parse_part_file_name(name), None, "{name}");
        }
    }

    #[tokio::test]
    async fn a_part_number_outside_1_to_10000_is_refused_even_when_signed() {
        let root = std::env::temp_dir().join(format!("cau-parts-{}", new_upload_id()));
        let mut settings = crate::config::Settings::default();
        settings.storage.local.root = root.clone();
        settings.storage.local.signing_key = Some("k".repeat(32).into());
        let storage = LocalStorage::open(&settings, &"http://127.0.0.1".parse().unwrap()).unwrap();
        let upload_id = create_upload(&storage.uploads_dir(), "uploads/a/b/c")
            .await
            .unwrap();
        for number in [0, MAX_PART_NUMBER + 1] {
            let signed = SignedRequest {
                method: super::super::SignedMethod::Put,
                bucket: "assets".into(),
                key: "uploads/a/b/c".into(),
                expires: i64::MAX,
                max_size: None,
                length: Some(1),
                content_type: None,
                checksum_sha256: None,
                part: Some(super::super::SignedPart {
                    number,
                    upload_id: upload_id.clone(),
                }),
            };
            let body = futures::stream::iter([Ok(Bytes::from_static(b"x"))]);
            let refused = storage.receive_part(&signed, body).await;
            assert!(
                matches!(refused, Err(UploadRejection::InvalidPartNumber(n)) if n == number),
                "{number}: {refused:?}"
            );
        }
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn only_generated_upload_ids_are_accepted_as_path_segments() {
        assert!(is_upload_id(&new_upload_id()));
        assert_ne!(new_upload_id(), new_upload_id());
        for id in ["", "..", "../../etc", &"A".repeat(32), &"0".repeat(31)] {
            assert!(!is_upload_id(id), "{id:?}");
        }
    }
}
