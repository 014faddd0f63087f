//! Large files in parts: `POST /api/upload` starts a multipart upload, each part is a signed
//! `PUT` of its exact size, `POST /api/upload/{id}/parts` signs more (and lists what storage
//! holds), and `PUT /api/status` assembles the parts.

use cloud_asset_uploader::config::Settings;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Backend, TestApp, assert_problem, assert_status, json_with_status, sample_file, sha256_base64,
    spawn_app_with,
};

const MIB: u64 = 1024 * 1024;

/// Parts of 5 MiB above a 5 MiB threshold, so a test file of 11 MiB makes three parts.
fn small_parts(settings: &mut Settings) {
    settings.uploads.multipart_threshold = 5 * MIB;
    settings.uploads.multipart_part_size = 5 * MIB;
}

async fn start(app: &TestApp, bytes: &[u8]) -> Value {
    let body = json!({
        "object_key": "big/video.bin",
        "content_type": "application/octet-stream",
        "content_length": bytes.len(),
        "checksum_sha256": sha256_base64(bytes),
    });
    json_with_status(app.request_upload(&body).await, 201).await
}

/// `PUT`s a part and returns the ETag storage answered.
async fn put_part(app: &TestApp, part: &Value, bytes: &[u8]) -> String {
    let number = part["part_number"].as_u64().unwrap();
    let size = part["size"].as_u64().unwrap();
    let start = ((number - 1) * 5 * MIB) as usize;
    let body = bytes[start..start + size as usize].to_vec();
    let response = app
        .client
        .put(part["url"].as_str().unwrap())
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "part {number}: {}",
        response.status()
    );
    response.headers()["etag"].to_str().unwrap().to_owned()
}

async fn complete(app: &TestApp, id: &str, parts: Value) -> reqwest::Response {
    app.client
        .put(format!("{}/api/status", app.address))
        .json(&json!({ "asset_id": id, "uploaded_status": "complete", "parts": parts }))
        .send()
        .await
        .unwrap()
}

async fn download(app: &TestApp, id: &str) -> Vec<u8> {
    let access: Value =
        json_with_status(app.access(Uuid::parse_str(id).unwrap(), None).await, 200).await;
    app.download(access["url"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn a_file_above_the_threshold_is_uploaded_in_parts_and_downloads_intact() {
    let app = spawn_app_with(Backend::S3, small_parts).await;
    let bytes = sample_file((11 * MIB) as usize);

    let grant = start(&app, &bytes).await;
    let info = &grant["signed_info"];
    assert_eq!(info["method"], "MULTIPART");
    assert_eq!(
        (info["part_size"].as_u64(), info["part_count"].as_u64()),
        (Some(5 * MIB), Some(3))
    );
    let mut etags = Vec::new();
    for part in info["parts"].as_array().unwrap() {
        etags.push(json!({ "part_number": part["part_number"], "etag": put_part(&app, part, &bytes).await }));
    }
    let id = grant["asset_id"].as_str().unwrap();
    assert_status(complete(&app, id, json!(etags)).await, 200).await;

    assert_eq!(
        download(&app, id).await,
        bytes,
        "the assembled object is the file, byte for byte"
    );
}

#[tokio::test]
async fn an_upload_resumes_after_signing_only_its_first_parts() {
    let app = spawn_app_with(Backend::S3, |s| {
        small_parts(s);
        s.uploads.max_presigned_parts = 1;
    })
    .await;
    let bytes = sample_file((11 * MIB) as usize);
    let grant = start(&app, &bytes).await;
    let id = grant["asset_id"].as_str().unwrap();
    let first = &grant["signed_info"]["parts"][0];
    assert_eq!(
        grant["signed_info"]["parts"].as_array().unwrap().len(),
        1,
        "one URL at a time"
    );
    let first_etag = put_part(&app, first, &bytes).await;

    // The client crashed; it asks what storage holds and for the URLs it still needs.
    let mut etags = vec![json!({ "part_number": 1, "etag": first_etag })];
    for number in [2, 3] {
        let response = app
            .client
            .post(format!("{}/api/upload/{id}/parts", app.address))
            .json(&json!({ "part_numbers": [number] }))
            .send()
            .await
            .unwrap();
        let signed: Value = json_with_status(response, 200).await;
        let uploaded: Vec<u64> = signed["uploaded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["part_number"].as_u64().unwrap())
            .collect();
        assert!(
            uploaded.contains(&1),
            "storage reports the part uploaded before the crash"
        );
        etags.push(json!({ "part_number": number, "etag": put_part(&app, &signed["parts"][0], &bytes).await }));
    }
    assert_status(complete(&app, id, json!(etags)).await, 200).await;
    assert_eq!(download(&app, id).await, bytes);
}

#[tokio::test]
async fn completing_with_wrong_or_missing_parts_returns_409_saying_what_is_wrong() {
    let app = spawn_app_with(Backend::S3, small_parts).await;
    let bytes = sample_file((11 * MIB) as usize);
    let grant = start(&app, &bytes).await;
    let id = grant["asset_id"].as_str().unwrap();
    let urls = grant["signed_info"]["parts"].as_array().unwrap();
    let (e1, e2) = (
        put_part(&app, &urls[0], &bytes).await,
        put_part(&app, &urls[1], &bytes).await,
    );
    let parts = |list: &[(u64, &str)]| {
        json!(
            list.iter()
                .map(|(n, e)| json!({ "part_number": n, "etag": e }))
                .collect::<Vec<_>>()
        )
    };

    let not_uploaded = complete(&app, id, parts(&[(1, &e1), (2, &e2), (3, &e2)])).await;
    let problem = assert_problem(not_uploaded, 409, "upload_mismatch").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("part 3 is not in storage"),
        "{problem}"
    );

    let e3 = put_part(&app, &urls[2], &bytes).await;
    let cases = [
        (
            parts(&[(1, &e1), (2, &e2)]),
            "missing parts: 3",
            "a part left out",
        ),
        (
            parts(&[(1, &e1), (2, &e2), (3, &e3), (4, &e3)]),
            "no such parts: 4",
            "a part that does not exist",
        ),
        (json!(null), "missing parts: 1, 2, 3", "no parts at all"),
        (
            parts(&[(1, &e1), (1, &e1), (2, &e2), (3, &e3)]),
            "listed twice",
            "a part listed twice",
        ),
    ];
    for (list, says, why) in cases {
        let problem = assert_problem(complete(&app, id, list).await, 409, "upload_mismatch").await;
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{why}: {problem}"
        );
    }
    assert_status(
        complete(&app, id, parts(&[(1, &e1), (2, &e2), (3, &e3)])).await,
        200,
    )
    .await;
    assert_eq!(
        download(&app, id).await,
        bytes,
        "a refused completion leaves the upload usable"
    );
}

#[tokio::test]
async fn a_part_of_another_size_than_signed_is_refused_by_storage() {
    let app = spawn_app_with(Backend::S3, small_parts).await;
    let bytes = sample_file((11 * MIB) as usize);
    let grant = start(&app, &bytes).await;
    let part = &grant["signed_info"]["parts"][2]; // the 1 MiB last part
    let response = app
        .client
        .put(part["url"].as_str().unwrap())
        .body(vec![7u8; (2 * MIB) as usize])
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_client_error(),
        "storage must refuse: {}",
        response.status()
    );
}

#[tokio::test]
async fn the_local_backend_refuses_multipart_and_takes_large_files_in_one_put() {
    let app = spawn_app_with(Backend::Local, small_parts).await;
    let asked = app
        .request_upload(
            &json!({ "object_key": "a", "content_length": 20 * MIB, "multipart": true }),
        )
        .await;
    assert_problem(asked, 400, "multipart_not_supported").await;

    let large = app
        .request_upload(&json!({ "object_key": "b", "content_length": 20 * MIB }))
        .await;
    let grant: Value = json_with_status(large, 201).await;
    assert_eq!(
        grant["signed_info"]["method"], "PUT",
        "the local backend streams any size in one PUT"
    );
}

#[tokio::test]
async fn part_urls_are_signed_only_for_parts_that_exist() {
    let app = spawn_app_with(Backend::S3, small_parts).await;
    let bytes = sample_file((11 * MIB) as usize);
    let grant = start(&app, &bytes).await;
    let id = grant["asset_id"].as_str().unwrap();
    for (numbers, why) in [
        (json!([0]), "parts count from 1"),
        (json!([4]), "the upload has three parts"),
        (json!([]), "nothing asked"),
    ] {
        let response = app
            .client
            .post(format!("{}/api/upload/{id}/parts", app.address))
            .json(&json!({ "part_numbers": numbers }))
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 400, "validation_failed").await;
        assert_eq!(problem["field"], "part_numbers", "{why}");
    }
    let single = app
        .new_upload(&json!({ "object_key": "small", "content_length": 10 }))
        .await;
    let response = app
        .client
        .post(format!(
            "{}/api/upload/{}/parts",
            app.address, single.asset_id
        ))
        .json(&json!({ "part_numbers": [1] }))
        .send()
        .await
        .unwrap();
    assert_problem(response, 409, "not_multipart").await;
}
