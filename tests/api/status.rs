//! `PUT /api/status`: completing an upload is checked against what storage really holds, is
//! idempotent, and cannot be undone.

use std::time::Duration;

use cloud_asset_uploader::config::Settings;
use cloud_asset_uploader::storage::{self, UploadSpec};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Backend, SignedInfo, TestApp, assert_problem, assert_success, json_with_status, sha256_base64,
    spawn_app, spawn_app_with,
};

#[tokio::test]
async fn completing_an_uploaded_asset_returns_200_with_its_new_status() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let grant = app.new_upload(&json!({ "object_key": "notes.txt" })).await;
    let uploaded = app.upload_file(&grant.signed_info, b"some notes").await;
    assert_success(uploaded).await;

    // Act
    let response = app.mark_status(grant.asset_id, "complete").await;

    // Assert
    let body: Value = json_with_status(response, 200).await;
    assert_eq!(
        body,
        json!({ "success": true, "asset_id": grant.asset_id, "uploaded_status": "complete" })
    );
}

async fn completing_before_any_upload_returns_409_upload_not_found(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let grant = app
        .new_upload(&json!({ "object_key": "never-sent.bin" }))
        .await;

    // Act
    let response = app.mark_status(grant.asset_id, "complete").await;

    // Assert
    assert_problem(response, 409, "upload_not_found").await;
    let access = app.access(grant.asset_id, None).await;
    assert_problem(access, 409, "asset_not_complete").await;
}

#[tokio::test]
async fn completing_before_any_upload_returns_409_upload_not_found_on_local_storage() {
    completing_before_any_upload_returns_409_upload_not_found(Backend::Local).await;
}

#[tokio::test]
async fn completing_before_any_upload_returns_409_upload_not_found_on_s3() {
    completing_before_any_upload_returns_409_upload_not_found(Backend::S3).await;
}

/// Declares `declared` for `object_key`, then stores `hello` under the asset's key with
/// storage's own signature (a URL that enforces nothing of the declaration), so storage holds
/// an object that differs from what is declared.
async fn store_other_than_declared(
    app: &TestApp,
    settings: &Settings,
    object_key: &str,
    mut declared: Value,
) -> Uuid {
    declared["object_key"] = json!(object_key);
    let grant = app.new_upload(&declared).await;
    let storage = storage::from_settings(settings, &app.address.parse().unwrap())
        .await
        .expect("opening storage");
    let storage_key = format!(
        "{}/anonymous/{}/{object_key}",
        settings.storage.key_prefix, grant.asset_id
    );
    let signed = storage
        .presign_upload(&UploadSpec {
            storage_key: &storage_key,
            content_type: None,
            content_length: Some(5),
            checksum_sha256: None,
            max_size: 5,
            expires_in: Duration::from_secs(60),
        })
        .await
        .expect("signing");
    let signed: SignedInfo = serde_json::from_value(serde_json::to_value(signed).unwrap()).unwrap();
    assert_success(app.upload_file(&signed, b"hello").await).await;
    grant.asset_id
}

async fn completing_an_upload_that_differs_from_its_declaration_returns_409_upload_mismatch(
    backend: Backend,
) {
    // Arrange
    let mut settings = None;
    let app = spawn_app_with(backend, |s| settings = Some(s.clone())).await;
    let settings = settings.expect("the settings were configured");
    let cases = [
        (
            "size",
            json!({ "content_length": 6 }),
            "6 bytes declared, 5 stored",
        ),
        (
            "checksum",
            json!({ "content_length": 5, "checksum_sha256": sha256_base64(b"world") }),
            "the stored bytes hash differently",
        ),
    ];

    for (object_key, redeclared, reason) in cases {
        let asset_id = store_other_than_declared(&app, &settings, object_key, redeclared).await;

        // Act
        let response = app.mark_status(asset_id, "complete").await;

        // Assert
        let status = response.status();
        let problem: Value = json_with_status(response, 409).await;
        assert_eq!(
            problem["code"], "upload_mismatch",
            "{reason} ({status}): {problem}"
        );
    }
}

#[tokio::test]
async fn completing_an_upload_that_differs_from_its_declaration_returns_409_upload_mismatch_on_local_storage()
 {
    completing_an_upload_that_differs_from_its_declaration_returns_409_upload_mismatch(
        Backend::Local,
    )
    .await;
}

#[tokio::test]
async fn completing_an_upload_that_differs_from_its_declaration_returns_409_upload_mismatch_on_s3()
{
    completing_an_upload_that_differs_from_its_declaration_returns_409_upload_mismatch(Backend::S3)
        .await;
}

#[tokio::test]
async fn completing_twice_is_idempotent() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let asset_id = app.store("twice.txt", b"twice").await;

    // Act
    let response = app.mark_status(asset_id, "complete").await;

    // Assert
    let body: Value = json_with_status(response, 200).await;
    assert_eq!(body["uploaded_status"], "complete");
    assert_eq!(app.access(asset_id, None).await.status().as_u16(), 200);
}

#[tokio::test]
async fn reverting_a_complete_asset_to_pending_returns_409_completion_irreversible() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let asset_id = app.store("one-way.txt", b"one way").await;

    // Act
    let response = app.mark_status(asset_id, "pending").await;

    // Assert
    assert_problem(response, 409, "completion_irreversible").await;
    assert_eq!(
        app.access(asset_id, None).await.status().as_u16(),
        200,
        "the asset stays complete"
    );
}

#[tokio::test]
async fn marking_an_unknown_asset_returns_404_asset_not_found() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    // Act
    let response = app.mark_status(Uuid::new_v4(), "complete").await;

    // Assert
    assert_problem(response, 404, "asset_not_found").await;
}

#[tokio::test]
async fn invalid_status_requests_return_400_validation_failed_naming_the_field() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let id = Uuid::new_v4();
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({ "asset_id": id, "uploaded_status": "done" }),
            "uploaded_status",
            "only pending and complete exist",
        ),
        (
            json!({ "asset_id": id, "uploaded_status": "COMPLETE" }),
            "uploaded_status",
            "statuses are lowercase",
        ),
        (
            json!({ "asset_id": id }),
            "uploaded_status",
            "the status is required",
        ),
        (
            json!({ "asset_id": "not-a-uuid", "uploaded_status": "complete" }),
            "asset_id",
            "ids are UUIDs",
        ),
        (
            json!({ "uploaded_status": "complete" }),
            "asset_id",
            "the asset is required",
        ),
        (
            json!({ "asset_id": id, "uploaded_status": "complete", "force": true }),
            "force",
            "unknown fields must not be ignored",
        ),
    ];

    for (body, field, reason) in cases {
        // Act
        let response = app
            .client
            .put(format!("{}/api/status", app.address))
            .json(&body)
            .send()
            .await
            .unwrap();

        // Assert
        let problem = assert_problem(response, 400, "validation_failed").await;
        assert_eq!(problem["field"], field, "{reason}: {problem}");
    }
}
