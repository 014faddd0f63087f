//! Completion on the local backend trusts the record of size and SHA-256 kept while the bytes
//! streamed in, and only while the file on disk is the one recorded: a file truncated,
//! rewritten or cut off mid-upload is never completed, and an edited record is believed
//! over the file (which proves the file is not hashed again). Objects without a record
//! (stored before records existed) are read back, as before.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, UploadGrant, assert_problem, assert_status, assert_success, sample_file,
    scan_orphans, sha256_base64, spawn_app,
};

/// The bucket directory of the test app (`storage.bucket` is `assets` in tests).
fn bucket_dir(app: &TestApp) -> PathBuf {
    app.local_root().join("assets")
}

/// The object file whose name is `name`, outside the backend's own `~…` directories.
pub fn object_file(app: &TestApp, name: &str) -> PathBuf {
    fn find(dir: &Path, name: &str) -> Option<PathBuf> {
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && !file_name.starts_with('~') {
                if let Some(found) = find(&path, name) {
                    return Some(found);
                }
            } else if file_name == name {
                return Some(path);
            }
        }
        None
    }
    find(&bucket_dir(app), name).unwrap_or_else(|| panic!("no object file named {name}"))
}

/// The record kept beside the object in `file`.
fn record_of(app: &TestApp, file: &Path) -> PathBuf {
    let bucket = bucket_dir(app);
    bucket.join("~records").join(
        file.strip_prefix(&bucket)
            .expect("objects live in the bucket directory"),
    )
}

/// Uploads `file` as `name` (declaring what `declare` says) and returns the grant.
async fn uploaded(app: &TestApp, name: &str, file: &[u8], declare: Value) -> UploadGrant {
    let mut body = json!({ "object_key": name });
    body.as_object_mut()
        .unwrap()
        .extend(declare.as_object().unwrap().clone());
    let grant = app.new_upload(&body).await;
    assert_success(app.upload_file(&grant.signed_info, file).await).await;
    grant
}

/// Lets the filesystem's clock move past the upload's last write, so a rewrite gets another
/// modification time (timestamps advance in clock ticks of a few milliseconds).
async fn after_a_clock_tick() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn completion_believes_the_record_over_the_file_so_the_file_is_not_hashed_again() {
    // Arrange: an intact file whose record was made to claim other bytes.
    let app = spawn_app(Backend::Local).await;
    let file = sample_file(64 * 1024);
    let declared = json!({ "content_length": file.len(), "checksum_sha256": sha256_base64(&file) });
    let grant = uploaded(&app, "trusted.bin", &file, declared).await;
    let record = record_of(&app, &object_file(&app, "trusted.bin"));
    let mut recorded: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(recorded["size"], file.len(), "the record holds the size");
    recorded["sha256"] = json!("00".repeat(32));
    std::fs::write(&record, serde_json::to_vec(&recorded).unwrap()).unwrap();

    // Act
    let completed = app.mark_status(grant.asset_id, "complete").await;

    // Assert
    assert_problem(completed, 409, "upload_mismatch").await;
}

#[tokio::test]
async fn a_file_truncated_behind_the_servers_back_is_never_completed() {
    // Nothing declared (a form upload): only the record knows how large the file was.
    let app = spawn_app(Backend::Local).await;
    let grant = uploaded(&app, "cut.bin", &sample_file(10_000), json!({})).await;
    let object = object_file(&app, "cut.bin");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&object)
        .unwrap()
        .set_len(4_000)
        .unwrap();

    let completed = app.mark_status(grant.asset_id, "complete").await;

    let problem = assert_problem(completed, 409, "upload_mismatch").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("4000 bytes"),
        "{problem}"
    );
    let retried = app.mark_status(grant.asset_id, "complete").await;
    assert_problem(retried, 409, "upload_mismatch").await;
}

#[tokio::test]
async fn a_file_rewritten_in_place_with_the_same_size_is_never_completed() {
    let app = spawn_app(Backend::Local).await;
    let file = sample_file(10_000);
    let grant = uploaded(
        &app,
        "rewritten.bin",
        &file,
        json!({ "content_length": file.len() }),
    )
    .await;
    let object = object_file(&app, "rewritten.bin");
    after_a_clock_tick().await;
    let mut handle = std::fs::OpenOptions::new()
        .write(true)
        .open(&object)
        .unwrap();
    handle.write_all(b"not the uploaded bytes").unwrap();
    drop(handle);

    let completed = app.mark_status(grant.asset_id, "complete").await;

    assert_problem(completed, 409, "upload_mismatch").await;
}

#[tokio::test]
async fn an_upload_cut_off_mid_body_leaves_nothing_to_complete() {
    // Arrange: a PUT announcing 1 MiB that sends half of it, then closes the connection.
    let app = spawn_app(Backend::Local).await;
    let file = sample_file(1024 * 1024);
    let grant = app
        .new_upload(&json!({ "object_key": "half.bin", "content_length": file.len() }))
        .await;
    let url = url::Url::parse(grant.signed_info.url()).unwrap();
    let target = format!("{}?{}", url.path(), url.query().unwrap());

    let staging = bucket_dir(&app).join("~staging");
    let staged = || std::fs::read_dir(&staging).unwrap().count();

    // Act: cut the connection once the server is streaming the body to its staging file.
    let mut stream =
        std::net::TcpStream::connect(format!("127.0.0.1:{}", url.port().unwrap())).unwrap();
    write!(
        stream,
        "PUT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
        file.len()
    )
    .unwrap();
    stream.write_all(&file[..file.len() / 2]).unwrap();
    assert!(until(|| staged() == 1).await, "the server stages the body");
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(stream);
    let cleaned = until(|| staged() == 0).await;
    let completed = app.mark_status(grant.asset_id, "complete").await;

    // Assert
    assert!(cleaned, "the partial body is removed");
    assert_problem(completed, 409, "upload_not_found").await;
    assert!(
        walk_files(&bucket_dir(&app).join("~records")).is_empty(),
        "no record of a partial body"
    );
}

/// Whether `condition` holds within 10 s (the server's disk work runs on its own threads).
async fn until(condition: impl Fn() -> bool) -> bool {
    for _ in 0..200 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn an_object_without_a_record_is_read_back_and_completed_only_if_it_matches() {
    // Objects stored before records existed have none: completion hashes them as it did.
    let app = spawn_app(Backend::Local).await;
    let file = sample_file(50_000);
    let declared = json!({ "content_length": file.len(), "checksum_sha256": sha256_base64(&file) });
    let intact = uploaded(&app, "old.bin", &file, declared.clone()).await;
    let altered = uploaded(&app, "old-altered.bin", &file, declared).await;
    for name in ["old.bin", "old-altered.bin"] {
        std::fs::remove_file(record_of(&app, &object_file(&app, name))).unwrap();
    }
    let mut handle = std::fs::OpenOptions::new()
        .write(true)
        .open(object_file(&app, "old-altered.bin"))
        .unwrap();
    handle.write_all(b"changed").unwrap();
    drop(handle);

    let completed = app.mark_status(intact.asset_id, "complete").await;
    let refused = app.mark_status(altered.asset_id, "complete").await;

    assert_status(completed, 200).await;
    assert_problem(refused, 409, "upload_mismatch").await;
}

#[tokio::test]
async fn completion_seals_the_record_with_the_object_and_deleting_removes_both() {
    let app = spawn_app(Backend::Local).await;
    let file = sample_file(1000);
    let grant = uploaded(
        &app,
        "sealed.bin",
        &file,
        json!({ "content_length": file.len() }),
    )
    .await;
    let object = object_file(&app, "sealed.bin");
    let record = record_of(&app, &object);

    assert_status(app.mark_status(grant.asset_id, "complete").await, 200).await;

    for sealed in [&object, &record] {
        let metadata = std::fs::metadata(sealed).unwrap();
        assert!(
            metadata.permissions().readonly(),
            "{} is read-only",
            sealed.display()
        );
    }
    let mut on_disk = Vec::new();
    std::fs::File::open(&object)
        .unwrap()
        .read_to_end(&mut on_disk)
        .unwrap();
    assert!(on_disk == file, "the sealed object is the upload");
    let deleted = app
        .client
        .delete(format!("{}/api/assets/{}", app.address, grant.asset_id))
        .send()
        .await
        .unwrap();
    assert_status(deleted, 204).await;
    assert!(!object.exists() && !record.exists(), "both are gone");
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Sets the modification time of `path` to `age` ago.
fn age_file(path: &Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - age)
        .unwrap();
}

#[tokio::test]
async fn the_orphan_scan_removes_old_unfinished_uploads_and_records_of_vanished_objects() {
    use cloud_asset_uploader::db::{AssetRepository, connect_lazy};
    use cloud_asset_uploader::lifecycle::Sweeper;
    use cloud_asset_uploader::storage;

    let app = crate::helpers::spawn_app_with(Backend::Local, |s| {
        s.lifecycle.sweeper_enabled = false;
    })
    .await;
    let bucket = bucket_dir(&app);
    let record_of = |object: &Path| {
        bucket
            .join("~records")
            .join(object.strip_prefix(&bucket).unwrap())
    };
    let two_hours = Duration::from_secs(7200);
    app.store("leftovers/kept.bin", b"kept").await;
    app.store("leftovers/vanished.bin", b"vanished").await;
    let kept = object_file(&app, "kept.bin");
    let vanished = object_file(&app, "vanished.bin");
    // A record whose object is still there is kept, however old: it is what keeps a file
    // altered behind the server's back from being completed.
    age_file(&record_of(&kept), two_hours);
    // The object removed behind the server's back: its record names nothing any more.
    std::fs::remove_file(&vanished).unwrap();
    age_file(&record_of(&vanished), two_hours);
    // An upload whose server died while writing it, and one being written right now.
    let crashed = bucket.join("~staging").join("tmp-crashed");
    let streaming = bucket.join("~staging").join("tmp-streaming");
    std::fs::write(&crashed, b"half an upl").unwrap();
    std::fs::write(&streaming, b"still arriving").unwrap();
    age_file(&crashed, two_hours);

    let settings = app.settings().clone();
    let storage = storage::from_settings(&settings, &app.address.parse().unwrap())
        .await
        .unwrap();
    let pool = connect_lazy(&settings.database).unwrap();
    let sweeper = Sweeper::new(AssetRepository::new(pool), storage, &settings);
    let mut expected = vec![
        "~staging/tmp-crashed".to_owned(),
        record_of(&vanished)
            .strip_prefix(&bucket)
            .unwrap()
            .to_string_lossy()
            .into_owned(),
    ];
    expected.sort();

    let mut dry = scan_orphans(&sweeper, true).await.working_files;
    dry.sort();
    assert_eq!(dry, expected);
    assert!(
        crashed.exists() && record_of(&vanished).exists(),
        "a dry run deletes nothing"
    );

    let mut swept = scan_orphans(&sweeper, false).await.working_files;
    swept.sort();
    assert_eq!(swept, expected);
    assert!(!crashed.exists());
    assert!(!record_of(&vanished).exists());
    assert!(streaming.exists(), "a file still being written stays");
    assert!(record_of(&kept).exists() && kept.exists());
    assert!(scan_orphans(&sweeper, false).await.working_files.is_empty());
}
