//! What the multipart tests share: small part settings, and the client's side of an upload
//! in parts (start, put a part, sign more, complete, download).

use cloud_asset_uploader::config::Settings;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, json_with_status, sha256_base64};

pub const MIB: u64 = 1024 * 1024;

/// Parts of 5 MiB above a 5 MiB threshold, so a test file of 11 MiB makes three parts.
pub fn small_parts(settings: &mut Settings) {
    settings.uploads.multipart_threshold = 5 * MIB;
    settings.uploads.multipart_part_size = 5 * MIB;
}

/// Requests the upload of `bytes`, which must go in parts.
pub async fn start(app: &TestApp, bytes: &[u8]) -> Value {
    let body = json!({
        "object_key": "big/video.bin",
        "content_type": "application/octet-stream",
        "content_length": bytes.len(),
        "checksum_sha256": sha256_base64(bytes),
    });
    json_with_status(app.request_upload(&body).await, 201).await
}

/// `PUT`s a part and returns the ETag storage answered.
pub async fn put_part(app: &TestApp, part: &Value, bytes: &[u8]) -> String {
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

/// `PUT /api/status` completing the upload with `parts`.
pub async fn complete(app: &TestApp, id: &str, parts: Value) -> reqwest::Response {
    app.client
        .put(format!("{}/api/status", app.address))
        .json(&json!({ "asset_id": id, "uploaded_status": "complete", "parts": parts }))
        .send()
        .await
        .unwrap()
}

/// What the asset's download URL serves.
pub async fn download(app: &TestApp, id: &str) -> Vec<u8> {
    let access: Value =
        json_with_status(app.access(Uuid::parse_str(id).unwrap(), None).await, 200).await;
    app.download(access["url"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// `POST /api/upload/{id}/parts` for `numbers`, answered 200.
pub async fn sign_parts(app: &TestApp, id: &str, numbers: Value) -> Value {
    let response = app
        .client
        .post(format!("{}/api/upload/{id}/parts", app.address))
        .json(&json!({ "part_numbers": numbers }))
        .send()
        .await
        .unwrap();
    json_with_status(response, 200).await
}

/// An ETag as storage compares it.
pub fn unquoted(etag: &str) -> String {
    etag.trim_matches('"').to_ascii_lowercase()
}
