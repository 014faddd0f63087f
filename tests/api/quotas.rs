//! Per-owner quotas on pending uploads and declared bytes: 403 `quota_exceeded` with the limit
//! and the current use, never overshot by concurrent requests.

use cloud_asset_uploader::config::{OwnerLimits, Settings};
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::tokens::use_jwt;
use crate::helpers::{Backend, assert_problem, assert_status, assert_success, spawn_app_with};

/// Asserts a 403 `quota_exceeded` and returns its `quota` member.
async fn assert_quota_exceeded(response: Response) -> Value {
    let problem = assert_problem(response, 403, "quota_exceeded").await;
    problem["quota"].clone()
}

/// The statuses of `responses`, counted: (201s, 403 `quota_exceeded`s, anything else).
async fn tally(responses: Vec<Response>) -> (usize, usize, Vec<String>) {
    let (mut created, mut refused, mut other) = (0, 0, Vec::new());
    for response in responses {
        match response.status().as_u16() {
            201 => created += 1,
            403 => {
                assert_quota_exceeded(response).await;
                refused += 1;
            }
            status => other.push(format!("{status}: {}", response.text().await.unwrap())),
        }
    }
    (created, refused, other)
}

#[tokio::test]
async fn reaching_max_pending_uploads_returns_403_with_the_limit_and_the_pending_count() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |s| s.uploads.max_pending_uploads = Some(2)).await;
    let upload = |key: &str| json!({ "object_key": key, "content_length": 3 });
    let first = app.new_upload(&upload("a")).await;
    app.new_upload(&upload("b")).await;

    // Act
    let third = app.request_upload(&upload("c")).await;
    let reissued = app.request_upload(&upload("a")).await;

    // Assert
    let quota = assert_quota_exceeded(third).await;
    let expected =
        json!({ "limit": "max_pending_uploads", "allowed": 2, "current": 2, "requested": 1 });
    assert_eq!(quota, expected);
    assert_status(reissued, 200).await;
    assert_success(app.upload_file(&first.signed_info, b"abc").await).await;
    assert_status(app.mark_status(first.asset_id, "complete").await, 200).await;
    let after_completion = app.request_upload(&upload("c")).await;
    assert_eq!(
        after_completion.status().as_u16(),
        201,
        "a complete asset is no longer pending"
    );
}

#[tokio::test]
async fn reaching_max_total_bytes_returns_403_with_the_bytes_in_use() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |s| {
        s.uploads.max_size = 400;
        s.uploads.max_total_bytes = Some(1000);
    })
    .await;
    let upload =
        |key: &str, length: Option<u64>| json!({ "object_key": key, "content_length": length });
    app.new_upload(&upload("a", Some(400))).await;
    app.new_upload(&upload("b", Some(400))).await;

    // Act
    let undeclared = app.request_upload(&upload("c", None)).await;
    let too_big = app.request_upload(&upload("c", Some(201))).await;
    let fits = app.request_upload(&upload("c", Some(200))).await;

    // Assert
    let quota = assert_quota_exceeded(undeclared).await;
    let expected =
        json!({ "limit": "max_total_bytes", "allowed": 1000, "current": 800, "requested": 400 });
    assert_eq!(quota, expected, "an undeclared length counts as max_size");
    let quota = assert_quota_exceeded(too_big).await;
    assert_eq!(
        (quota["current"].as_u64(), quota["requested"].as_u64()),
        (Some(800), Some(201))
    );
    assert_eq!(
        fits.status().as_u16(),
        201,
        "exactly at the quota is allowed"
    );
}

#[tokio::test]
async fn an_owner_limits_entry_replaces_the_global_quota_for_its_owner_only() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |s: &mut Settings| {
        use_jwt(s);
        s.uploads.max_pending_uploads = Some(1);
        s.uploads.owner_limits = vec![OwnerLimits {
            owner: "importer".into(),
            max_size: None,
            max_pending_uploads: Some(3),
            max_total_bytes: None,
        }];
    })
    .await;
    let (importer, other) = (app.as_owner("importer"), app.as_owner("other"));
    for key in ["1", "2", "3"] {
        importer.new_upload(&json!({ "object_key": key })).await;
    }
    other.new_upload(&json!({ "object_key": "1" })).await;

    // Act
    let importers_fourth = importer.request_upload(&json!({ "object_key": "4" })).await;
    let others_second = other.request_upload(&json!({ "object_key": "2" })).await;

    // Assert
    assert_eq!(assert_quota_exceeded(importers_fourth).await["allowed"], 3);
    assert_eq!(assert_quota_exceeded(others_second).await["allowed"], 1);
}

#[tokio::test]
async fn fifty_concurrent_requests_at_the_edge_of_max_pending_uploads_never_overshoot() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |s| s.uploads.max_pending_uploads = Some(10)).await;
    let bodies: Vec<Value> = (0..50)
        .map(|i| json!({ "object_key": format!("k{i}") }))
        .collect();

    // Act
    let responses = futures::future::join_all(bodies.iter().map(|b| app.request_upload(b))).await;

    // Assert
    assert_eq!(
        tally(responses).await,
        (10, 40, vec![]),
        "(created, refused, other)"
    );
    assert_eq!(app.assets_of("anonymous", "pending").await.0, 10);
}

#[tokio::test]
async fn fifty_concurrent_requests_at_the_edge_of_max_total_bytes_never_overshoot() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |s| s.uploads.max_total_bytes = Some(1000)).await;
    let bodies: Vec<Value> = (0..50)
        .map(|i| json!({ "object_key": format!("k{i}"), "content_length": 100 }))
        .collect();

    // Act
    let responses = futures::future::join_all(bodies.iter().map(|b| app.request_upload(b))).await;

    // Assert
    assert_eq!(
        tally(responses).await,
        (10, 40, vec![]),
        "(created, refused, other)"
    );
    assert_eq!(app.assets_of("anonymous", "pending").await, (10, 1000));
}
