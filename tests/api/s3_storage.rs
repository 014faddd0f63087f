//! The S3 backend against MinIO, where it differs from the local one: an upload without a
//! declared length is a presigned `POST` form, and it moves real bytes. (What both backends'
//! signed URLs allow and refuse: `signed_urls`.)

use serde_json::json;

use crate::helpers::{
    AccessGrant, Backend, SignedInfo, TestApp, assert_status, assert_success, json_with_status,
    sample_file, spawn_app,
};

/// Completes the asset, asks for its download URL and returns what that URL serves.
async fn complete_and_download(app: &TestApp, asset_id: uuid::Uuid) -> reqwest::Response {
    let completed = app.mark_status(asset_id, "complete").await;
    assert_status(completed, 200).await;
    let access: AccessGrant = json_with_status(app.access(asset_id, None).await, 200).await;
    app.download(&access.url).await
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
