//! `GET /api/access`: download URLs exist only for complete assets.

use chrono::{Duration, Utc};
use uuid::Uuid;

use crate::helpers::{AccessGrant, Backend, assert_problem, json_with_status, spawn_app};

#[tokio::test]
async fn access_to_a_complete_asset_returns_200_with_a_url_expiring_when_asked() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let asset_id = app.store("docs/readme.txt", b"read me").await;

    // Act
    let response = app.access(asset_id, Some(300)).await;

    // Assert
    let grant: AccessGrant = json_with_status(response, 200).await;
    assert_eq!(grant.asset_id, asset_id);
    assert!(grant.url.starts_with("http"), "{}", grant.url);
    let expected = Utc::now() + Duration::seconds(300);
    assert!(
        (grant.expires_at - expected).num_seconds().abs() <= 5,
        "expires_at {}",
        grant.expires_at
    );
}

#[tokio::test]
async fn access_to_a_pending_asset_returns_409_asset_not_complete() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let grant = app
        .new_upload(&serde_json::json!({ "object_key": "pending.txt" }))
        .await;

    // Act
    let response = app.access(grant.asset_id, None).await;

    // Assert
    assert_problem(response, 409, "asset_not_complete").await;
}

#[tokio::test]
async fn access_to_an_unknown_asset_returns_404_asset_not_found() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    // Act
    let response = app.access(Uuid::new_v4(), None).await;

    // Assert
    assert_problem(response, 404, "asset_not_found").await;
}

#[tokio::test]
async fn invalid_access_queries_return_400_validation_failed_naming_the_field() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let asset_id = app.store("valid.txt", b"valid").await;
    let id = asset_id.to_string();
    let cases = [
        (
            format!("asset_id={id}&expires_in=0"),
            "expires_in",
            "a URL valid for no time is useless",
        ),
        (
            format!("asset_id={id}&expires_in=1801"),
            "expires_in",
            "longer than access.max_expires_in",
        ),
        (
            format!("asset_id={id}&expires_in=soon"),
            "expires_in",
            "a lifetime is a number of seconds",
        ),
        (
            "asset_id=not-a-uuid".to_owned(),
            "asset_id",
            "ids are UUIDs",
        ),
        (
            "expires_in=60".to_owned(),
            "asset_id",
            "the asset is required",
        ),
    ];

    for (query, field, reason) in cases {
        // Act
        let response = app.get(&format!("/api/access?{query}")).await;

        // Assert
        let problem = assert_problem(response, 400, "validation_failed").await;
        assert_eq!(problem["field"], field, "{reason}: {problem}");
    }
}
