//! Writing an upload to disk at disk speed: the body's chunks are gathered into large batches,
//! each written by one blocking thread and hashed by another while the next one fills (so
//! receiving, hashing and writing overlap, the runtime's threads never hash, and memory stays
//! at two batches per upload). The kernel is told to start writing each batch to disk as
//! soon as it is written, and the file is fsynced before anything names it. Files being
//! written live in `<bucket dir>/~staging/` (or, for a part, in its upload's directory),
//! never under a key, and are removed if the upload fails or its request goes away.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::storage::digest::{Digested, HashingCounter};

/// Directory of files being written, directly under the bucket directory (`~` cannot occur
/// in `storage.key_prefix`, so no key reaches it and `Storage::list` never walks it).
pub(super) const STAGING_DIR: &str = "~staging";
/// Bytes gathered before they are handed to a blocking thread: large enough that hand-offs
/// and syscalls cost nothing next to the copy, small enough to hold twice per upload.
const BATCH: usize = 8 * 1024 * 1024;

/// A file that is removed when dropped, unless it was [`TempFile::keep`]-ed (published).
#[derive(Debug)]
pub(super) struct TempFile {
    path: PathBuf,
    kept: bool,
}

impl TempFile {
    /// Takes charge of the (just created) file at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path, kept: false }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file was renamed into place: nothing to remove any more.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A file being written in batches, hashed as it is written.
pub(super) struct StagingFile {
    temp: TempFile,
    /// Bytes handed to [`StagingFile::write`] so far.
    received: u64,
    /// The file while no batch is being written.
    idle: Option<File>,
    /// The digest so far while no batch is being hashed.
    idle_counter: Option<HashingCounter>,
    /// The batch being written; gives the file back.
    writing: Option<JoinHandle<io::Result<File>>>,
    /// The same batch being hashed; gives the counter back.
    hashing: Option<JoinHandle<HashingCounter>>,
    batch: Vec<Bytes>,
    batched: usize,
}

impl StagingFile {
    /// Creates `path`, which must not exist yet.
    pub async fn create(path: PathBuf) -> io::Result<Self> {
        // The guard is made where the file is: should the request go away while the file is
        // being created, the runtime drops the guard with the task's output, and so the file.
        let (file, temp) = blocking(move || {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            Ok((file, TempFile::new(path)))
        })
        .await?;
        Ok(Self {
            temp,
            received: 0,
            idle: Some(file),
            idle_counter: Some(HashingCounter::new()),
            writing: None,
            hashing: None,
            batch: Vec::new(),
            batched: 0,
        })
    }

    /// Bytes handed to [`StagingFile::write`] so far (written or about to be).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Appends `chunk` (kept as it is; copied only by the kernel).
    pub async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        self.received += chunk.len() as u64;
        self.batched += chunk.len();
        self.batch.push(chunk);
        if self.batched >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes what is left and fsyncs; returns the file (to rename into place), its metadata
    /// as written, and the size and SHA-256 of what was written.
    pub async fn finish(mut self) -> io::Result<(TempFile, Metadata, Digested)> {
        self.flush().await?;
        let (file, counter) = self.settled().await?;
        let metadata = blocking(move || {
            file.sync_all()?;
            file.metadata()
        })
        .await?;
        Ok((self.temp, metadata, counter.finish()))
    }

    /// Hands the gathered bytes to two blocking threads, one writing and one hashing them,
    /// once the previous batch is written and hashed.
    async fn flush(&mut self) -> io::Result<()> {
        let (mut file, mut counter) = self.settled().await?;
        let batch = std::mem::take(&mut self.batch);
        let len = std::mem::take(&mut self.batched) as u64;
        let offset = self.received - len;
        let hashed = batch.clone();
        self.hashing = Some(tokio::task::spawn_blocking(move || {
            for chunk in &hashed {
                counter.update(chunk);
            }
            counter
        }));
        self.writing = Some(tokio::task::spawn_blocking(move || {
            for chunk in &batch {
                file.write_all(chunk)?;
            }
            start_writeback(&file, offset, len);
            Ok(file)
        }));
        Ok(())
    }

    /// The file and the counter, once the batch in flight (if any) is written and hashed.
    async fn settled(&mut self) -> io::Result<(File, HashingCounter)> {
        let failed = || io::Error::other("an earlier write to the staging file failed");
        let counter = match self.hashing.take() {
            Some(hashing) => hashing.await.map_err(io::Error::other)?,
            None => self.idle_counter.take().ok_or_else(failed)?,
        };
        let file = match self.writing.take() {
            Some(writing) => writing.await.map_err(io::Error::other)??,
            None => self.idle.take().ok_or_else(failed)?,
        };
        Ok((file, counter))
    }
}

/// Asks the kernel to start writing `len` bytes at `offset` of `file` to disk now, without
/// waiting for them: by the final fsync most of the upload is already on disk, so the fsync
/// no longer costs a second pass over the whole file after the last byte arrived. Only a
/// hint: should it fail, the fsync still writes everything.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is borrowed from `file`, open for the whole call; the call
    // reads no memory of ours.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// Runs blocking file work off the runtime's threads.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

/// A fresh name for a file in the staging directory `dir`.
pub(super) fn staging_path(dir: &Path) -> PathBuf {
    dir.join(format!("tmp-{}", super::parts::new_upload_id()))
}

/// fsyncs directory `dir`, so a rename into it survives a crash.
pub(super) async fn sync_dir(dir: PathBuf) -> io::Result<()> {
    blocking(move || File::open(&dir)?.sync_all()).await
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[tokio::test]
    async fn batches_are_written_and_hashed_in_order_whatever_the_chunk_sizes() {
        let dir = std::env::temp_dir().join(format!("cau-staging-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        // Two and a half batches, in chunks of sizes that never divide a batch.
        let body: Vec<u8> = (0..BATCH * 5 / 2).map(|i| (i % 251) as u8).collect();
        let mut file = StagingFile::create(staging_path(&dir)).await.unwrap();
        for chunk in body.chunks(65_537) {
            file.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        assert_eq!(file.received(), body.len() as u64);

        let (temp, metadata, digested) = file.finish().await.unwrap();

        assert_eq!(metadata.len(), body.len() as u64);
        assert_eq!(digested.size, body.len() as u64);
        assert_eq!(digested.digest, <[u8; 32]>::from(Sha256::digest(&body)));
        assert!(std::fs::read(temp.path()).unwrap() == body);
        let path = temp.path().to_path_buf();
        drop(temp);
        assert!(!path.exists(), "an unpublished staging file is removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
