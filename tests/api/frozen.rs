//! Completion freezes an asset's bytes: its still-valid upload URL cannot replace them
//! (local backend: 409 `upload_already_complete` for a `PUT` or a form; S3: the `PUT` is a
//! conditional write, 412), while a re-issued pending asset can be sent again.

use serde_json::{Value, json};

use crate::helpers::{
    AccessGrant, Backend, TestApp, assert_problem, assert_status, assert_success, json_with_status,
    sample_file, spawn_app,
};

/// The bytes a complete asset's download answers.
async fn downloaded(app: &TestApp, asset_id: uuid::Uuid) -> Vec<u8> {
    let grant: AccessGrant = json_with_status(app.access(asset_id, None).await, 200).await;
    let response = app.download(&grant.url).await;
    assert_eq!(response.status().as_u16(), 200);
    response.bytes().await.unwrap().to_vec()
}

/// Uploads `original`, completes, then sends `other` (same size) through the same URL.
async fn replace_after_completion(app: &TestApp, body: Value) -> (uuid::Uuid, reqwest::Response) {
    let original = sample_file(64);
    let grant = app.new_upload(&body).await;
    assert_success(app.upload_file(&grant.signed_info, &original).await).await;
    assert_status(app.mark_status(grant.asset_id, "complete").await, 200).await;
    let other = vec![b'x'; original.len()];
    let replaced = app.upload_file(&grant.signed_info, &other).await;
    (grant.asset_id, replaced)
}

async fn a_complete_assets_upload_url_cannot_replace_its_bytes(backend: Backend, declared: bool) {
    // Arrange
    let app = spawn_app(backend).await;
    let body = match declared {
        true => json!({ "object_key": "frozen.bin", "content_length": 64 }),
        false => json!({ "object_key": "frozen.bin" }),
    };

    // Act
    let (asset_id, replaced) = replace_after_completion(&app, body).await;

    // Assert
    match backend {
        Backend::Local => {
            assert_problem(replaced, 409, "upload_already_complete").await;
        }
        Backend::S3 | Backend::S3PartChecksums => {
            assert_eq!(replaced.status().as_u16(), 412, "a conditional PUT")
        }
    }
    assert_eq!(downloaded(&app, asset_id).await, sample_file(64));
}

#[tokio::test]
async fn a_complete_assets_put_url_cannot_replace_its_bytes_on_local_storage() {
    a_complete_assets_upload_url_cannot_replace_its_bytes(Backend::Local, true).await;
}

#[tokio::test]
async fn a_complete_assets_form_cannot_replace_its_bytes_on_local_storage() {
    a_complete_assets_upload_url_cannot_replace_its_bytes(Backend::Local, false).await;
}

#[tokio::test]
async fn a_complete_assets_put_url_cannot_replace_its_bytes_on_s3() {
    a_complete_assets_upload_url_cannot_replace_its_bytes(Backend::S3, true).await;
}

async fn a_reissued_pending_asset_takes_a_new_file(backend: Backend) {
    // Arrange: a file stored, not completed.
    let app = spawn_app(backend).await;
    let body = json!({ "object_key": "again.bin", "content_length": 64 });
    let first = app.new_upload(&body).await;
    assert_success(app.upload_file(&first.signed_info, &[b'a'; 64]).await).await;

    // Act
    let again = app.request_upload(&body).await;
    let again: crate::helpers::UploadGrant = json_with_status(again, 200).await;
    let sent = app.upload_file(&again.signed_info, &sample_file(64)).await;

    // Assert
    assert_success(sent).await;
    assert_status(app.mark_status(again.asset_id, "complete").await, 200).await;
    assert_eq!(downloaded(&app, again.asset_id).await, sample_file(64));
}

#[tokio::test]
async fn a_reissued_pending_asset_takes_a_new_file_on_local_storage() {
    a_reissued_pending_asset_takes_a_new_file(Backend::Local).await;
}

#[tokio::test]
async fn a_reissued_pending_asset_takes_a_new_file_on_s3() {
    a_reissued_pending_asset_takes_a_new_file(Backend::S3).await;
}

#[tokio::test]
async fn a_deleted_complete_asset_leaves_nothing_behind_on_local_storage() {
    // Arrange: sealed (read-only) once complete.
    let app = spawn_app(Backend::Local).await;
    let asset_id = app.store("sealed.bin", &sample_file(16)).await;

    // Act
    let deleted = app
        .with_headers(&[])
        .delete(&format!("/api/assets/{asset_id}"))
        .await;

    // Assert
    assert_eq!(deleted.status().as_u16(), 204);
    let left: Vec<_> = walk(app.local_root())
        .into_iter()
        .filter(|p| p.ends_with("sealed.bin"))
        .collect();
    assert!(left.is_empty(), "the sealed file is removed: {left:?}");
}

fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
