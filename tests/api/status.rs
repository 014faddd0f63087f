//! `PUT /api/status`: completing an upload is checked against what storage really holds, is
//! idempotent, and cannot be undone.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Backend, TestApp, assert_problem, assert_status, assert_success, json_with_status,
    sha256_base64, spawn_app,
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

/// Uploads `hello` under a first declaration, then re-requests the (still pending) key with
/// `redeclared`, so storage holds an object that differs from what is now declared.
async fn upload_then_redeclare(app: &TestApp, object_key: &str, redeclared: Value) -> Uuid {
    let first = json!({ "object_key": object_key, "content_length": 5, "checksum_sha256": sha256_base64(b"hello") });
    let grant = app.new_upload(&first).await;
    let uploaded = app.upload_file(&grant.signed_info, b"hello").await;
    assert_success(uploaded).await;
    let mut body = redeclared;
    body["object_key"] = json!(object_key);
    let again = app.request_upload(&body).await;
    assert_status(again, 200).await;
    grant.asset_id
}

async fn completing_an_upload_that_differs_from_its_declaration_returns_409_upload_mismatch(
    backend: Backend,
) {
    // Arrange
    let app = spawn_app(backend).await;
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
        let asset_id = upload_then_redeclare(&app, object_key, redeclared).await;

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
