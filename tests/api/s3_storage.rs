//! The S3 backend against MinIO: presigned `PUT`s and `POST` forms move real bytes, and
//! storage itself refuses what the signature does not allow.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    AccessGrant, Backend, SignedInfo, TestApp, assert_nothing_stored, assert_status,
    assert_success, describe, header, json_with_status, sample_file, sha256_base64, spawn_app,
    spawn_app_with,
};

/// Completes the asset, asks for its download URL and returns what that URL serves.
async fn complete_and_download(app: &TestApp, asset_id: uuid::Uuid) -> reqwest::Response {
    let completed = app.mark_status(asset_id, "complete").await;
    assert_status(completed, 200).await;
    let access: AccessGrant = json_with_status(app.access(asset_id, None).await, 200).await;
    app.download(&access.url).await
}

#[tokio::test]
async fn a_file_put_to_its_presigned_url_comes_back_intact_from_the_download_url() {
    // Arrange
    let app = spawn_app(Backend::S3).await;
    let file = sample_file(256 * 1024);
    let grant = app
        .new_upload(&json!({
            "object_key": "images/photo.png",
            "content_type": "image/png",
            "content_length": file.len(),
            "checksum_sha256": sha256_base64(&file),
        }))
        .await;
    let SignedInfo::Put { headers, .. } = &grant.signed_info else {
        panic!(
            "a declared length is signed as a PUT, got {:?}",
            grant.signed_info
        );
    };
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("image/png")
    );

    // Act
    let uploaded = app.upload_file(&grant.signed_info, &file).await;
    let downloaded = complete_and_download(&app, grant.asset_id).await;

    // Assert
    assert_success(uploaded).await;
    assert_eq!(downloaded.status().as_u16(), 200);
    assert_eq!(header(&downloaded, "content-type"), "image/png");
    assert!(
        downloaded.bytes().await.unwrap() == file,
        "the downloaded bytes differ from the upload"
    );
}

#[tokio::test]
async fn a_file_posted_with_the_signed_form_comes_back_intact_from_the_download_url() {
    // Arrange
    let app = spawn_app(Backend::S3).await;
    let file = sample_file(100 * 1024);
    let grant = app
        .new_upload(&json!({ "object_key": "docs/form upload.txt", "content_type": "text/plain" }))
        .await;
    assert!(
        matches!(grant.signed_info, SignedInfo::Post { .. }),
        "without a declared length S3 uploads are POST forms, got {:?}",
        grant.signed_info
    );

    // Act
    let uploaded = app.upload_file(&grant.signed_info, &file).await;
    let downloaded = complete_and_download(&app, grant.asset_id).await;

    // Assert
    assert_success(uploaded).await;
    assert_eq!(downloaded.status().as_u16(), 200);
    assert!(
        downloaded.bytes().await.unwrap() == file,
        "the downloaded bytes differ from the upload"
    );
}

#[tokio::test]
async fn a_body_longer_than_the_signed_length_is_refused_by_storage() {
    // Arrange
    let app = spawn_app(Backend::S3).await;
    let grant = app
        .new_upload(&json!({ "object_key": "ten.bin", "content_length": 10 }))
        .await;

    // Act
    let response = app.upload_file(&grant.signed_info, &sample_file(11)).await;

    // Assert
    let status = response.status().as_u16();
    assert!(
        status == 403 || status == 400,
        "expected 403 or 400, got {}",
        describe(response).await
    );
    assert_nothing_stored(&app, grant.asset_id).await;
}

#[tokio::test]
async fn a_content_type_other_than_the_signed_one_is_refused_by_storage_with_403() {
    // Arrange
    let app = spawn_app(Backend::S3).await;
    let grant = app
        .new_upload(
            &json!({ "object_key": "page.txt", "content_type": "text/plain", "content_length": 9 }),
        )
        .await;

    // Act
    let response = app
        .upload_file(
            &grant.signed_info.with_header("content-type", "text/html"),
            b"<p>hi</p>",
        )
        .await;

    // Assert
    assert_status(response, 403).await;
    assert_nothing_stored(&app, grant.asset_id).await;
}

#[tokio::test]
async fn a_body_not_matching_the_declared_checksum_is_refused_by_storage_with_400() {
    // Arrange
    let app = spawn_app(Backend::S3).await;
    let grant = app
        .new_upload(&json!({
            "object_key": "checked.txt",
            "content_length": 5,
            "checksum_sha256": sha256_base64(b"hello"),
        }))
        .await;

    // Act
    let response = app.upload_file(&grant.signed_info, b"jello").await;

    // Assert
    assert_status(response, 400).await;
    // S3 and MinIO discard a body whose checksum fails; the s3s-fs stand-in answers 400 but
    // keeps the bytes. Either way the asset must not become complete.
    let completion = app.mark_status(grant.asset_id, "complete").await;
    let problem: serde_json::Value = json_with_status(completion, 409).await;
    assert!(
        problem["code"] == "upload_not_found" || problem["code"] == "upload_mismatch",
        "refused bytes must not complete the asset: {problem}"
    );
}

#[tokio::test]
async fn a_form_upload_over_the_maximum_size_is_refused_by_storage_with_400() {
    // Arrange
    let app = spawn_app_with(Backend::S3, |s| s.uploads.max_size = 16).await;
    let at_limit = app
        .new_upload(&json!({ "object_key": "sixteen.bin" }))
        .await;
    let over_limit = app
        .new_upload(&json!({ "object_key": "seventeen.bin" }))
        .await;

    // Act
    let accepted = app
        .upload_file(&at_limit.signed_info, &sample_file(16))
        .await;
    let refused = app
        .upload_file(&over_limit.signed_info, &sample_file(17))
        .await;

    // Assert
    assert_success(accepted).await;
    assert_status(refused, 400).await;
    assert_nothing_stored(&app, over_limit.asset_id).await;
}

#[tokio::test]
async fn an_expired_presigned_put_is_refused_by_storage_with_403() {
    // Arrange
    let app = spawn_app(Backend::S3).await;
    let grant = app
        .new_upload(&json!({ "object_key": "late.txt", "content_length": 8, "expires_in": 1 }))
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Act
    let response = app.upload_file(&grant.signed_info, b"too late").await;

    // Assert
    assert_status(response, 403).await;
    assert_nothing_stored(&app, grant.asset_id).await;
}

#[tokio::test]
async fn an_expired_download_url_is_refused_by_storage_with_403() {
    // Arrange
    let app = spawn_app(Backend::S3).await;
    let asset_id = app.store("fleeting.txt", b"fleeting").await;
    let access: AccessGrant = json_with_status(app.access(asset_id, Some(1)).await, 200).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Act
    let response = app.download(&access.url).await;

    // Assert
    assert_status(response, 403).await;
}
