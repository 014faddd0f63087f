//! Writing an upload to disk at disk speed: the body's chunks are gathered into large batches,
//! each written by a blocking thread while the next one fills (so hashing on the request's
//! task and writing overlap, and memory stays at two batches per upload), then fsynced
//! before anything names the file. Files being written live in `<bucket dir>/~staging/`
//! (or, for a part, in its upload's directory), never under a key, and are removed if the
//! upload fails or its request goes away.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::task::JoinHandle;

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

/// A file being written in batches.
pub(super) struct StagingFile {
    temp: TempFile,
    /// The file while no batch is being written.
    idle: Option<File>,
    /// The batch being written; gives the file back.
    writing: Option<JoinHandle<io::Result<File>>>,
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
            idle: Some(file),
            writing: None,
            batch: Vec::new(),
            batched: 0,
        })
    }

    /// Appends `chunk` (kept as it is; copied only by the kernel).
    pub async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        self.batched += chunk.len();
        self.batch.push(chunk);
        if self.batched >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes what is left and fsyncs; returns the file (to rename into place) and its
    /// metadata as written.
    pub async fn finish(mut self) -> io::Result<(TempFile, Metadata)> {
        self.flush().await?;
        let file = self.file().await?;
        let metadata = blocking(move || {
            file.sync_all()?;
            file.metadata()
        })
        .await?;
        Ok((self.temp, metadata))
    }

    /// Hands the gathered bytes to a blocking thread, once the previous batch is written.
    async fn flush(&mut self) -> io::Result<()> {
        let mut file = self.file().await?;
        let batch = std::mem::take(&mut self.batch);
        self.batched = 0;
        self.writing = Some(tokio::task::spawn_blocking(move || {
            for chunk in &batch {
                file.write_all(chunk)?;
            }
            Ok(file)
        }));
        Ok(())
    }

    /// The file, once the batch being written (if any) is on disk.
    async fn file(&mut self) -> io::Result<File> {
        if let Some(writing) = self.writing.take() {
            return writing.await.map_err(io::Error::other)?;
        }
        self.idle
            .take()
            .ok_or_else(|| io::Error::other("an earlier write to the staging file failed"))
    }
}

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
