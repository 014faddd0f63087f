//! `POST /api/upload`: issuing signed upload URLs, and every way a request can be refused.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use serde_json::json;

use crate::helpers::{
    Backend, SignedInfo, UploadGrant, assert_problem, json_with_status, sha256_base64, spawn_app,
};

#[tokio::test]
async fn a_new_object_key_gets_a_pending_asset_and_a_signed_put_with_201() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    // Act
    let response = app
        .request_upload(
            &json!({ "object_key": "photos/cat.png", "content_length": 48213, "expires_in": 120 }),
        )
        .await;

    // Assert
    let grant: UploadGrant = json_with_status(response, 201).await;
    assert_eq!(grant.status, "pending");
    let expected_expiry = Utc::now() + Duration::seconds(120);
    assert!(
        (grant.expires_at - expected_expiry).num_seconds().abs() <= 5,
        "expires_at {} should be about 120 s from now",
        grant.expires_at
    );
    let SignedInfo::Put { url, .. } = &grant.signed_info else {
        panic!("the local backend signs PUTs, got {:?}", grant.signed_info);
    };
    assert!(
        url.starts_with(&format!("{}/storage/", app.address)),
        "{url} points at the server's storage routes"
    );
}

#[tokio::test]
async fn declared_type_and_length_become_headers_the_upload_must_carry() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let body = json!({
        "object_key": "report.pdf",
        "content_type": "application/pdf",
        "content_length": 5,
        "checksum_sha256": sha256_base64(b"%PDF-"),
    });

    // Act
    let grant = app.new_upload(&body).await;

    // Assert
    let SignedInfo::Put { headers, .. } = &grant.signed_info else {
        panic!("expected a PUT, got {:?}", grant.signed_info);
    };
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("application/pdf")
    );
    assert_eq!(headers.get("content-length").map(String::as_str), Some("5"));
}

#[tokio::test]
async fn re_requesting_a_pending_key_returns_200_with_the_same_asset_and_a_fresh_signature() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let first = app
        .new_upload(&json!({ "object_key": "draft.txt", "content_length": 10, "expires_in": 60 }))
        .await;

    // Act
    let response = app
        .request_upload(
            &json!({ "object_key": "draft.txt", "content_length": 10, "expires_in": 600 }),
        )
        .await;

    // Assert
    let second: UploadGrant = json_with_status(response, 200).await;
    assert_eq!(second.asset_id, first.asset_id);
    assert_eq!(second.status, "pending");
    assert!(
        second.expires_at > first.expires_at,
        "the new URL lives longer"
    );
    assert_ne!(
        second.signed_info.url(),
        first.signed_info.url(),
        "the URL is signed anew"
    );
}

#[tokio::test]
async fn re_requesting_a_completed_key_returns_409_upload_already_complete() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    app.store("final.txt", b"done").await;

    // Act
    let response = app
        .request_upload(&json!({ "object_key": "final.txt" }))
        .await;

    // Assert
    assert_problem(response, 409, "upload_already_complete").await;
}

#[tokio::test]
async fn a_hundred_concurrent_requests_for_one_new_key_create_exactly_one_asset() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let body = json!({ "object_key": "race/contested.bin" });

    // Act
    let responses = futures::future::join_all((0..100).map(|_| app.request_upload(&body))).await;

    // Assert
    let mut created = 0;
    let mut ids = HashSet::new();
    for response in responses {
        let status = response.status().as_u16();
        assert!(status == 200 || status == 201, "unexpected status {status}");
        created += usize::from(status == 201);
        let grant: UploadGrant = json_with_status(response, status).await;
        ids.insert(grant.asset_id);
    }
    assert_eq!(created, 1, "exactly one request creates the asset");
    assert_eq!(ids.len(), 1, "every request names the same asset: {ids:?}");
}
