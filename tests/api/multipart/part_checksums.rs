//! Parts signed with their SHA-256 (`part_checksums`): the client declares each part's
//! checksum when it asks for the part's URL, storage refuses other bytes, and completion
//! checks the parts storage holds against the declarations without reading the object back
//! (unless the store keeps no part checksums), recording their composite checksum.
//!
//! `local` runs on the local backend, `s3` on the store of `UPLOADER_TEST_S3_CHECKSUM_IMAGE`,
//! which verifies part checksums as S3 does.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::support::{MIB, complete, download, small_parts};
use crate::helpers::{
    Backend, TestApp, assert_problem, json_with_status, sample_file, sha256_base64, spawn_app_with,
};
use crate::metrics::{sample, scrape};

on_both_backends!(
    s3 = S3PartChecksums;
    parts_declared_with_their_sha256_complete_without_reading_the_object_back,
    a_part_whose_bytes_differ_from_its_checksum_is_refused_by_storage,
    signing_asks_for_the_form_the_upload_was_started_with,
);

/// The bytes of part `number` (1-based) of `bytes` in 5 MiB parts.
fn part_of(bytes: &[u8], number: u64) -> &[u8] {
    let start = ((number - 1) * 5 * MIB) as usize;
    &bytes[start..(start + 5 * MIB as usize).min(bytes.len())]
}

/// S3's composite checksum of `bytes` in 5 MiB parts.
fn composite_of(bytes: &[u8]) -> String {
    let parts: Vec<&[u8]> = bytes.chunks(5 * MIB as usize).collect();
    let mut digests = Vec::new();
    for part in &parts {
        digests.extend_from_slice(&Sha256::digest(part));
    }
    format!(
        "{}-{}",
        STANDARD.encode(Sha256::digest(&digests)),
        parts.len()
    )
}

/// Starts the upload of `bytes` in parts with part checksums.
pub(crate) async fn start_with_part_checksums(app: &TestApp, bytes: &[u8]) -> Value {
    let body = json!({
        "object_key": "big/checked.bin",
        "content_length": bytes.len(),
        "part_checksums": true,
    });
    json_with_status(app.request_upload(&body).await, 201).await
}

async fn sign(app: &TestApp, id: &str, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}/api/upload/{id}/parts", app.address))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Signs parts `numbers` of `bytes`, declaring each part's SHA-256.
pub(crate) async fn sign_declared(app: &TestApp, id: &str, bytes: &[u8], numbers: &[u64]) -> Value {
    let parts: Vec<Value> = numbers
        .iter()
        .map(|n| json!({ "part_number": n, "checksum_sha256": sha256_base64(part_of(bytes, *n)) }))
        .collect();
    json_with_status(sign(app, id, json!({ "parts": parts })).await, 200).await
}

/// `PUT`s `body` to a signed part with the headers it lists.
pub(crate) async fn put_signed(app: &TestApp, part: &Value, body: Vec<u8>) -> reqwest::Response {
    let mut request = app.client.put(part["url"].as_str().unwrap()).body(body);
    for (name, value) in part["headers"].as_object().unwrap() {
        request = request.header(name, value.as_str().unwrap());
    }
    request.send().await.unwrap()
}

pub(crate) fn etag(response: &reqwest::Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

/// How often the server read an object back to hash its parts.
async fn read_backs(app: &TestApp) -> f64 {
    let metrics = scrape(app).await;
    sample(
        &metrics,
        "uploader_storage_operation_duration_seconds_count",
        &[("operation", "hash_parts")],
    )
    .unwrap_or(0.0)
}

async fn parts_declared_with_their_sha256_complete_without_reading_the_object_back(
    backend: Backend,
) {
    let app = spawn_app_with(backend, small_parts).await;
    let bytes = sample_file((11 * MIB) as usize);

    let grant = start_with_part_checksums(&app, &bytes).await;
    let info = &grant["signed_info"];
    assert_eq!(info["part_checksums"], true);
    assert_eq!(info["part_count"], 3);
    assert_eq!(
        info["parts"],
        json!([]),
        "no part is signed before it is declared"
    );
    assert_eq!(info["max_parts_per_request"], 100, "the default limit");
    let id = grant["asset_id"].as_str().unwrap();

    let signed = sign_declared(&app, id, &bytes, &[1, 2, 3]).await;
    let mut parts = Vec::new();
    for part in signed["parts"].as_array().unwrap() {
        let number = part["part_number"].as_u64().unwrap();
        let declared = sha256_base64(part_of(&bytes, number));
        match backend {
            Backend::Local => assert!(
                part["url"].as_str().unwrap().contains("checksum_sha256="),
                "the local backend signs the checksum into the URL: {part}"
            ),
            _ => assert_eq!(part["headers"]["x-amz-checksum-sha256"], declared.as_str()),
        }
        let stored = put_signed(&app, part, part_of(&bytes, number).to_vec()).await;
        assert_eq!(stored.status().as_u16(), 200, "part {number}");
        parts.push(json!({ "part_number": number, "etag": etag(&stored) }));
    }
    let listed = sign_declared(&app, id, &bytes, &[1]).await;
    let held = &listed["uploaded"].as_array().unwrap();
    assert_eq!(held.len(), 3);
    for part in held.iter() {
        let number = part["part_number"].as_u64().unwrap();
        assert_eq!(
            part["checksum_sha256"],
            sha256_base64(part_of(&bytes, number)).as_str(),
            "storage reports what it verified"
        );
    }

    let completed = complete(&app, id, json!(parts)).await;
    assert_eq!(
        completed.status().as_u16(),
        200,
        "{}",
        completed.text().await.unwrap()
    );
    assert_eq!(read_backs(&app).await, 0.0, "nothing was read back");
    let asset: Value = json_with_status(app.get(&format!("/api/assets/{id}")).await, 200).await;
    assert_eq!(asset["composite_sha256"], composite_of(&bytes).as_str());
    assert_eq!(asset["part_size"], 5 * MIB);
    assert_eq!(
        asset["checksum_sha256"],
        Value::Null,
        "no whole-file checksum was declared"
    );
    assert!(
        download(&app, id).await == bytes,
        "the download is the file"
    );
}

async fn a_part_whose_bytes_differ_from_its_checksum_is_refused_by_storage(backend: Backend) {
    let app = spawn_app_with(backend, small_parts).await;
    let bytes = sample_file((11 * MIB) as usize);
    let grant = start_with_part_checksums(&app, &bytes).await;
    let id = grant["asset_id"].as_str().unwrap();
    let signed = sign_declared(&app, id, &bytes, &[1, 2, 3]).await;
    let signed = signed["parts"].as_array().unwrap();

    // Part 2 with one byte changed, its size kept.
    let mut altered = part_of(&bytes, 2).to_vec();
    altered[1234] ^= 0xff;
    let refused = put_signed(&app, &signed[1], altered).await;
    assert_eq!(refused.status().as_u16(), 400);
    let answer = refused.text().await.unwrap();
    let code = if backend == Backend::Local {
        "checksum_mismatch"
    } else {
        "BadDigest"
    };
    assert!(answer.contains(code), "{answer}");

    let mut parts = Vec::new();
    for (part, number) in signed.iter().zip(1..) {
        if number == 2 {
            continue;
        }
        let stored = put_signed(&app, part, part_of(&bytes, number).to_vec()).await;
        assert_eq!(stored.status().as_u16(), 200, "part {number}");
        parts.push(json!({ "part_number": number, "etag": etag(&stored) }));
    }
    let listed = sign_declared(&app, id, &bytes, &[2]).await;
    let held: Vec<u64> = listed["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["part_number"].as_u64().unwrap())
        .collect();
    assert!(!held.contains(&2), "the refused part is not kept: {held:?}");
    let incomplete = complete(&app, id, json!(parts)).await;
    let problem = assert_problem(incomplete, 409, "upload_mismatch").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("missing parts: 2"),
        "{problem}"
    );

    // The right bytes, sent again, complete the upload.
    let stored = put_signed(&app, &listed["parts"][0], part_of(&bytes, 2).to_vec()).await;
    assert_eq!(stored.status().as_u16(), 200);
    parts.insert(1, json!({ "part_number": 2, "etag": etag(&stored) }));
    let completed = complete(&app, id, json!(parts)).await;
    assert_eq!(completed.status().as_u16(), 200);
    assert!(download(&app, id).await == bytes);
}

async fn signing_asks_for_the_form_the_upload_was_started_with(backend: Backend) {
    let app = spawn_app_with(backend, small_parts).await;
    let bytes = sample_file((11 * MIB) as usize);
    let grant = start_with_part_checksums(&app, &bytes).await;
    let id = grant["asset_id"].as_str().unwrap();
    let digest = sha256_base64(part_of(&bytes, 1));

    for (body, says) in [
        (json!({ "part_numbers": [1] }), "send `parts`"),
        (
            json!({ "parts": [{ "part_number": 1, "checksum_sha256": "abc" }] }),
            "base64",
        ),
        (
            json!({ "parts": [{ "part_number": 4, "checksum_sha256": digest }] }),
            "between 1 and 3",
        ),
        (
            json!({ "parts": [
                { "part_number": 1, "checksum_sha256": digest },
                { "part_number": 1, "checksum_sha256": digest },
            ] }),
            "listed twice",
        ),
    ] {
        let problem =
            assert_problem(sign(&app, id, body.clone()).await, 400, "validation_failed").await;
        assert!(problem.to_string().contains(says), "{body}: {problem}");
    }

    // An upload started without part checksums takes part numbers only.
    let plain: Value = json_with_status(
        app.request_upload(
            &json!({ "object_key": "big/plain.bin", "content_length": bytes.len() }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(plain["signed_info"]["part_checksums"], false);
    assert_eq!(plain["signed_info"]["parts"][0]["headers"], json!({}));
    let plain_id = plain["asset_id"].as_str().unwrap();
    let body = json!({ "parts": [{ "part_number": 1, "checksum_sha256": digest }] });
    let problem = assert_problem(sign(&app, plain_id, body).await, 400, "validation_failed").await;
    assert!(
        problem.to_string().contains("without part_checksums"),
        "{problem}"
    );
}

/// On a store that keeps no part checksums (the S3 stand-in of `UPLOADER_TEST_MINIO_IMAGE`
/// offline), completion reads the object back and compares each part with its declaration.
#[tokio::test]
async fn a_store_that_keeps_no_part_checksums_has_the_parts_read_back() {
    let app = spawn_app_with(Backend::S3, small_parts).await;
    let bytes = sample_file((11 * MIB) as usize);
    let grant = start_with_part_checksums(&app, &bytes).await;
    let id = grant["asset_id"].as_str().unwrap();
    let signed = sign_declared(&app, id, &bytes, &[1, 2, 3]).await;

    let mut altered = part_of(&bytes, 3).to_vec();
    altered[0] ^= 0xff;
    let mut parts = Vec::new();
    for (part, number) in signed["parts"].as_array().unwrap().iter().zip(1..) {
        let body = if number == 3 {
            altered.clone()
        } else {
            part_of(&bytes, number).to_vec()
        };
        let stored = put_signed(&app, part, body).await;
        if number == 3 && stored.status().as_u16() == 400 {
            // This store verifies part checksums itself (MinIO does): nothing to read back.
            eprintln!("the store of UPLOADER_TEST_MINIO_IMAGE checks part checksums itself");
            return;
        }
        assert_eq!(stored.status().as_u16(), 200, "part {number}");
        parts.push(json!({ "part_number": number, "etag": etag(&stored) }));
    }

    let refused = complete(&app, id, json!(parts)).await;
    let problem = assert_problem(refused, 409, "upload_mismatch").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("parts: 3"),
        "{problem}"
    );
    assert_eq!(read_backs(&app).await, 1.0, "the parts were read back once");
}
