//! Multipart uploads as the local backend stores them: parts on the server's disk, behind its
//! own signed part URLs. What both backends share is in `multipart`; this is what only the
//! local backend can show: the part directories, the part route's own checks, and the sweep.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cloud_asset_uploader::config::Settings;
use cloud_asset_uploader::db::{AssetRepository, connect_lazy};
use cloud_asset_uploader::lifecycle::Sweeper;
use cloud_asset_uploader::storage::{self, Storage};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{
    Backend, TestApp, assert_problem, assert_status, header, json_with_status, sample_file,
    scan_orphans, spawn_app_with,
};
use crate::local_storage::tamper;
use crate::multipart::support::{
    MIB, complete, download, put_part, sign_parts, small_parts, start,
};

const APP_ORIGIN: &str = "https://app.example.com";

/// Every directory under `root` named `name`.
fn directories_named(root: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if entry.file_name() == name {
                    found.push(entry.path());
                }
                pending.push(entry.path());
            }
        }
    }
    found
}

/// The bytes of part `number` (1-based) of `file`, in 5 MiB parts.
fn part_of(file: &[u8], number: usize) -> &[u8] {
    let start = (number - 1) * (5 * MIB) as usize;
    &file[start..(start + (5 * MIB) as usize).min(file.len())]
}

async fn put(app: &TestApp, url: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.client.put(url).body(body).send().await.unwrap()
}

fn upload_id(grant: &Value) -> &str {
    grant["signed_info"]["upload_id"].as_str().unwrap()
}

fn part_url(grant: &Value, index: usize) -> &str {
    grant["signed_info"]["parts"][index]["url"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn deleting_an_asset_uploaded_in_parts_removes_its_parts_from_disk() {
    let app = spawn_app_with(Backend::Local, small_parts).await;
    let file = sample_file((11 * MIB) as usize);
    let grant = start(&app, &file).await;
    let id = grant["asset_id"].as_str().unwrap();
    put_part(&app, &grant["signed_info"]["parts"][0], &file).await;
    let dirs = directories_named(app.local_root(), upload_id(&grant));
    assert_eq!(dirs.len(), 1, "the upload has one directory of parts");
    assert!(
        std::fs::read_dir(&dirs[0]).unwrap().count() >= 2,
        "key and part 1"
    );

    let deleted = app
        .client
        .delete(format!("{}/api/assets/{id}", app.address))
        .send()
        .await
        .unwrap();
    assert_status(deleted, 204).await;

    assert!(!dirs[0].exists(), "aborting removes the parts");
    let late = put(&app, part_url(&grant, 1), part_of(&file, 2).to_vec()).await;
    assert_problem(late, 404, "no_such_upload").await;
}

#[tokio::test]
async fn a_part_larger_than_signed_is_refused_while_it_streams() {
    let app = spawn_app_with(Backend::Local, small_parts).await;
    let file = sample_file((11 * MIB) as usize);
    let grant = start(&app, &file).await;
    let last = part_url(&grant, 2); // 1 MiB
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![1; MIB as usize]), Ok(vec![2; 10])];

    // No Content-Length: only counting the bytes as they arrive can catch it.
    let streamed = put(
        &app,
        last,
        reqwest::Body::wrap_stream(futures::stream::iter(chunks)),
    )
    .await;
    let announced = put(&app, last, vec![3; (MIB + 1) as usize]).await;

    assert_problem(streamed, 413, "upload_too_large").await;
    assert_problem(announced, 413, "upload_too_large").await;
    let signed = sign_parts(&app, grant["asset_id"].as_str().unwrap(), json!([3])).await;
    assert_eq!(
        signed["uploaded"],
        json!([]),
        "nothing of a refused part is kept"
    );
}

#[tokio::test]
async fn a_part_answers_its_sha256_as_etag_and_browsers_may_read_it() {
    let app = spawn_app_with(Backend::Local, |s| {
        small_parts(s);
        s.cors.allowed_origins = vec![APP_ORIGIN.into()];
    })
    .await;
    let file = sample_file((11 * MIB) as usize);
    let grant = start(&app, &file).await;
    let url = part_url(&grant, 0);

    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", APP_ORIGIN)
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    let response = app
        .client
        .put(url)
        .header("origin", APP_ORIGIN)
        .body(part_of(&file, 1).to_vec())
        .send()
        .await
        .unwrap();

    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        APP_ORIGIN
    );
    assert_eq!(response.status().as_u16(), 200);
    let expected = format!("\"{}\"", hex::encode(Sha256::digest(part_of(&file, 1))));
    assert_eq!(header(&response, "etag"), expected);
    let exposed = header(&response, "access-control-expose-headers").to_ascii_lowercase();
    assert!(exposed.contains("etag"), "exposed headers: {exposed}");
}

#[tokio::test]
async fn a_part_sent_again_replaces_the_earlier_one() {
    let app = spawn_app_with(Backend::Local, small_parts).await;
    let file = sample_file((11 * MIB) as usize);
    let grant = start(&app, &file).await;
    let id = grant["asset_id"].as_str().unwrap();
    let wrong = put(&app, part_url(&grant, 0), vec![0; (5 * MIB) as usize]).await;
    let wrong_etag = header(&wrong, "etag");
    let mut etags = Vec::new();
    for part in grant["signed_info"]["parts"].as_array().unwrap() {
        etags.push(json!({ "part_number": part["part_number"], "etag": put_part(&app, part, &file).await }));
    }

    let listed = sign_parts(&app, id, json!([1])).await;
    let firsts: Vec<&Value> = listed["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["part_number"] == 1)
        .collect();
    assert_eq!(firsts.len(), 1, "one copy of part 1: {listed}");
    assert_eq!(firsts[0]["etag"], etags[0]["etag"]);
    let mut stale = etags.clone();
    stale[0]["etag"] = json!(wrong_etag);
    let refused = complete(&app, id, json!(stale)).await;
    let problem = assert_problem(refused, 409, "upload_mismatch").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("part 1: the ETag is not the one storage holds"),
        "{detail}"
    );
    assert_status(complete(&app, id, json!(etags)).await, 200).await;
    assert_eq!(download(&app, id).await, file);
    assert!(
        directories_named(app.local_root(), upload_id(&grant)).is_empty(),
        "completion removes the parts"
    );
}

#[tokio::test]
async fn a_part_url_is_good_for_its_part_of_its_upload_only() {
    let app = spawn_app_with(Backend::Local, small_parts).await;
    let file = sample_file((11 * MIB) as usize);
    let grant = start(&app, &file).await;
    let url = part_url(&grant, 0);
    let body = part_of(&file, 1);
    let without_part = tamper(&tamper(url, "partNumber", None), "uploadId", None);
    let cases = [
        (
            tamper(url, "partNumber", Some("2")),
            "signature_mismatch",
            "another part",
        ),
        (
            tamper(url, "uploadId", Some(&"0".repeat(32))),
            "signature_mismatch",
            "another upload",
        ),
        (
            without_part,
            "signature_mismatch",
            "the whole object instead of a part",
        ),
        (
            tamper(url, "uploadId", None),
            "signature_missing",
            "a part of no upload",
        ),
    ];
    for (tampered, code, why) in cases {
        let response = put(&app, &tampered, body.to_vec()).await;
        let problem: Value = json_with_status(response, 403).await;
        assert_eq!(problem["code"], code, "{why}: {problem}");
    }
    let signed = sign_parts(&app, grant["asset_id"].as_str().unwrap(), json!([1])).await;
    assert_eq!(
        signed["uploaded"],
        json!([]),
        "no tampered URL stored a part"
    );
}

#[tokio::test]
async fn the_orphan_scan_removes_stale_unrecorded_uploads_but_never_the_marker() {
    let mut captured = None;
    let app = spawn_app_with(Backend::Local, |s| {
        small_parts(s);
        s.lifecycle.sweeper_enabled = false;
        s.lifecycle.pending_grace = Duration::ZERO;
        captured = Some(s.clone());
    })
    .await;
    let settings: Settings = captured.unwrap();
    let file = sample_file((11 * MIB) as usize);
    let (abandoned, kept) = (start(&app, &file).await, start_other(&app, &file).await);
    for grant in [&abandoned, &kept] {
        put_part(&app, &grant["signed_info"]["parts"][0], &file).await;
    }
    // As a crash between recording and aborting would leave it: parts no asset refers to.
    let id: uuid::Uuid = abandoned["asset_id"].as_str().unwrap().parse().unwrap();
    let db = app.database().await;
    db.execute("DELETE FROM assets WHERE id = $1", &[&id])
        .await
        .unwrap();
    let storage = storage::from_settings(&settings, &app.address.parse().unwrap())
        .await
        .unwrap();
    let marker = read_marker(&storage).await;
    let sweeper = |grace: Duration| {
        let mut settings = settings.clone();
        settings.lifecycle.pending_grace = grace;
        let pool = connect_lazy(&settings.database).unwrap();
        Sweeper::new(AssetRepository::new(pool), storage.clone(), &settings)
    };
    let young = scan_orphans(&sweeper(Duration::from_secs(3600)), false).await;
    assert!(
        young.uploads.is_empty(),
        "parts stored within the grace stay"
    );
    let sweeper = sweeper(Duration::ZERO);

    let dry = scan_orphans(&sweeper, true).await;
    assert_eq!(dry.uploads, [upload_id(&abandoned)]);
    assert_eq!(
        directories_named(app.local_root(), upload_id(&abandoned)).len(),
        1
    );
    let swept = scan_orphans(&sweeper, false).await;

    assert_eq!(swept.uploads, [upload_id(&abandoned)]);
    assert!(directories_named(app.local_root(), upload_id(&abandoned)).is_empty());
    assert_eq!(
        directories_named(app.local_root(), upload_id(&kept)).len(),
        1
    );
    assert!(swept.objects.is_empty(), "{:?}", swept.objects);
    assert_eq!(read_marker(&storage).await, marker, "the marker stays");
}

/// Starts a second upload of `file` under another key.
async fn start_other(app: &TestApp, file: &[u8]) -> Value {
    let body = json!({ "object_key": "big/other.bin", "content_length": file.len() });
    json_with_status(app.request_upload(&body).await, 201).await
}

async fn read_marker(storage: &Arc<dyn Storage>) -> Vec<u8> {
    storage
        .marker()
        .expect("the local backend has a marker")
        .read_marker()
        .await
        .unwrap()
        .expect("the server wrote its marker at start")
}
