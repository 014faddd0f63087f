//! `GET /metrics`: real requests move real counters, labelled by route template.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    Backend, TestApp, assert_problem, header, sample_file, spawn_app, spawn_app_with,
};
use crate::multipart::support::{MIB, complete, put_part, small_parts, start};

/// The value of the sample `name{…}` whose labels include every one of `labels`.
pub(crate) fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (label_text, value) = match rest.strip_prefix('{') {
            Some(rest) => rest.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|(key, value)| label_text.contains(&format!("{key}=\"{value}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

pub(crate) async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        header(&response, "content-type").starts_with("application/openmetrics-text"),
        "{}",
        header(&response, "content-type")
    );
    response.text().await.expect("reading /metrics")
}

#[tokio::test]
async fn requests_are_counted_by_route_template_method_and_status() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    app.new_upload(&json!({ "object_key": "docs/a.txt" })).await;
    let unknown = app.access(Uuid::now_v7(), None).await;
    assert_problem(unknown, 404, "asset_not_found").await;
    let nowhere = app.get("/no/such/route").await;
    assert_eq!(nowhere.status().as_u16(), 404);

    // Act
    let metrics = scrape(&app).await;

    // Assert
    let requests = "uploader_http_requests_total";
    let created = [
        ("route", "/api/upload"),
        ("method", "POST"),
        ("status", "201"),
    ];
    assert_eq!(sample(&metrics, requests, &created), Some(1.0), "{metrics}");
    let not_found = [
        ("route", "/api/access"),
        ("method", "GET"),
        ("status", "404"),
    ];
    assert_eq!(
        sample(&metrics, requests, &not_found),
        Some(1.0),
        "{metrics}"
    );
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(
        sample(&metrics, requests, &unmatched),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        !metrics.contains("/no/such/route"),
        "raw paths are no labels"
    );
    let latency = "uploader_http_request_duration_seconds_count";
    assert_eq!(sample(&metrics, latency, &created), Some(1.0), "{metrics}");
}

#[tokio::test]
async fn local_storage_routes_are_labelled_by_their_template() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    // Act
    app.store("photos/2026/cat.png", b"meow").await;
    let metrics = scrape(&app).await;

    // Assert
    // `store` sends no length: a form `POST` to the bucket.
    let upload = [("route", "/storage/{bucket}"), ("method", "POST")];
    assert_eq!(
        sample(&metrics, "uploader_http_requests_total", &upload),
        Some(1.0),
        "{metrics}"
    );
    assert!(!metrics.contains("cat.png"), "object keys are no labels");
}

#[tokio::test]
async fn asset_counters_follow_creation_and_completion() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange
        let app = spawn_app(backend).await;
        app.new_upload(&json!({ "object_key": "pending.txt" }))
            .await;

        // Act
        let asset_id = app.store("done.txt", b"complete bytes").await;
        let again = app.mark_status(asset_id, "complete").await;
        assert_eq!(again.status().as_u16(), 200);
        let metrics = scrape(&app).await;

        // Assert
        let created = sample(&metrics, "uploader_assets_created_total", &[]);
        let completed = sample(&metrics, "uploader_assets_completed_total", &[]);
        assert_eq!(created, Some(2.0), "{backend:?}: {metrics}");
        assert_eq!(
            completed,
            Some(1.0),
            "{backend:?}: completing twice counts once"
        );
    }
}

#[tokio::test]
async fn deleted_assets_are_counted() {
    let app = spawn_app(Backend::Local).await;
    let asset_id = app.store("gone.txt", b"bytes").await;

    let deleted = app
        .client
        .delete(format!("{}/api/assets/{asset_id}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let metrics = scrape(&app).await;

    assert_eq!(
        sample(&metrics, "uploader_assets_deleted_total", &[]),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "uploader_assets_swept_total", &[]),
        Some(0.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn storage_calls_are_timed_by_operation_and_outcome() {
    // Arrange
    let app = spawn_app(Backend::S3).await;
    let grant = app
        .new_upload(&json!({ "object_key": "never-sent.txt" }))
        .await;
    let incomplete = app.mark_status(grant.asset_id, "complete").await;
    assert_problem(incomplete, 409, "upload_not_found").await;

    // Act
    let asset_id = app.store("sent.txt", b"bytes").await;
    let access = app.access(asset_id, None).await;
    assert_eq!(access.status().as_u16(), 200);
    let metrics = scrape(&app).await;

    // Assert
    let count = "uploader_storage_operation_duration_seconds_count";
    for (operation, outcome, expected) in [
        ("presign_upload", "ok", 2.0),
        ("stat", "not_found", 1.0),
        ("stat", "ok", 1.0),
        ("presign_download", "ok", 1.0),
    ] {
        let labels = [("operation", operation), ("outcome", outcome)];
        assert_eq!(
            sample(&metrics, count, &labels),
            Some(expected),
            "{operation} {outcome}: {metrics}"
        );
    }
}

#[tokio::test]
async fn multipart_storage_calls_are_timed_too() {
    // Arrange
    let app = spawn_app_with(Backend::S3, small_parts).await;
    let bytes = sample_file((11 * MIB) as usize);
    let grant = start(&app, &bytes).await;
    let mut parts = Vec::new();
    for part in grant["signed_info"]["parts"].as_array().unwrap() {
        let etag = put_part(&app, part, &bytes).await;
        parts.push(json!({ "part_number": part["part_number"], "etag": etag }));
    }

    // Act
    let id = grant["asset_id"].as_str().unwrap();
    assert_eq!(
        complete(&app, id, json!(parts)).await.status().as_u16(),
        200
    );
    let metrics = scrape(&app).await;

    // Assert
    let count = "uploader_storage_operation_duration_seconds_count";
    for (operation, expected) in [
        ("multipart_start", 1.0),
        ("presign_part", 3.0),
        ("multipart_complete", 1.0),
    ] {
        let labels = [("operation", operation), ("outcome", "ok")];
        assert_eq!(
            sample(&metrics, count, &labels),
            Some(expected),
            "{operation}: {metrics}"
        );
    }
}

#[tokio::test]
async fn the_pool_and_the_build_are_described() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    // The upload's statement goes over the shared connection, the listing's through the pool.
    app.new_upload(&json!({ "object_key": "warm-the-pool.txt" }))
        .await;
    assert_eq!(app.get("/api/assets").await.status().as_u16(), 200);

    // Act
    let metrics = scrape(&app).await;

    // Assert
    let connections = sample(&metrics, "uploader_db_pool_connections", &[]).unwrap();
    assert!(connections >= 1.0, "{metrics}");
    let shared = sample(&metrics, "uploader_db_shared_connections", &[]);
    assert_eq!(shared, Some(1.0), "{metrics}");
    let max = sample(&metrics, "uploader_db_pool_max_connections", &[]);
    assert_eq!(max, Some(16.0), "{metrics}");
    assert!(sample(&metrics, "uploader_db_pool_idle_connections", &[]).is_some());
    assert_eq!(
        sample(&metrics, "uploader_db_pool_waiting_requests", &[]),
        Some(0.0)
    );
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(
        sample(&metrics, "uploader_build_info", &version),
        Some(1.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn metrics_can_be_served_on_a_separate_listener() {
    // Arrange: port 0, the bound port read back from the application.
    let app = spawn_app_with(Backend::Local, |s| {
        s.metrics.bind = Some(([127, 0, 0, 1], 0).into());
    })
    .await;
    let metrics_address = app.metrics_address.clone().expect("a separate listener");
    app.new_upload(&json!({ "object_key": "a.txt" })).await;

    // Act
    let on_api = app.get("/metrics").await;
    let separate = app
        .client
        .get(format!("{metrics_address}/metrics"))
        .send()
        .await
        .expect("GET the separate /metrics");

    // Assert
    assert_eq!(on_api.status().as_u16(), 404, "not public when moved away");
    assert_eq!(separate.status().as_u16(), 200);
    let metrics = separate.text().await.unwrap();
    let created = sample(&metrics, "uploader_assets_created_total", &[]);
    assert_eq!(created, Some(1.0), "{metrics}");
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |s| s.metrics.enabled = false).await;

    // Act
    let response = app.get("/metrics").await;

    // Assert
    assert_eq!(response.status().as_u16(), 404);
}
