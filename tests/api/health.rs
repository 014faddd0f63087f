//! Probes, the API description, unknown routes and request ids.

use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::{
    Backend, assert_problem, header, json_with_status, spawn_app, spawn_app_with,
};

#[tokio::test]
async fn health_check_returns_200() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    // Act
    let response = app.get("/healthz").await;

    // Assert
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn readiness_returns_200_when_database_and_storage_answer() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange
        let app = spawn_app(backend).await;

        // Act
        let response = app.get("/readyz").await;

        // Assert
        assert_eq!(response.status().as_u16(), 200, "{backend:?}");
    }
}

#[tokio::test]
async fn readiness_returns_503_when_the_database_does_not_answer() {
    // Arrange: nothing listens on port 1, and the pool connects lazily, so the server starts.
    let app = spawn_app_with(Backend::Local, |s| {
        s.database.url = Some(SecretString::from(
            "postgres://postgres:postgres@127.0.0.1:1/none".to_owned(),
        ));
        s.database.connect_timeout_secs = 1;
    })
    .await;

    // Act
    let response = app.get("/readyz").await;

    // Assert
    assert_eq!(response.status().as_u16(), 503);
}

#[tokio::test]
async fn readiness_returns_503_when_storage_does_not_answer() {
    // Arrange: nothing listens on port 1; without create_bucket the server starts anyway.
    let app = spawn_app_with(Backend::S3, |s| {
        s.storage.s3.endpoint = Some("http://127.0.0.1:1".into());
        s.storage.s3.create_bucket = false;
    })
    .await;

    // Act
    let response = app.get("/readyz").await;

    // Assert
    assert_eq!(response.status().as_u16(), 503);
}

#[tokio::test]
async fn the_openapi_document_lists_every_api_route() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    // Act
    let response = app.get("/openapi.json").await;

    // Assert
    let document: Value = json_with_status(response, 200).await;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "not OpenAPI 3: {document}"
    );
    let paths = [
        "/api/upload",
        "/api/upload/{asset_id}/parts",
        "/api/status",
        "/api/access",
        "/api/assets",
        "/api/assets/{asset_id}",
    ];
    for path in paths {
        assert!(
            document["paths"].get(path).is_some(),
            "{path} missing from {}",
            document["paths"]
        );
    }
    let delete = &document["paths"]["/api/assets/{asset_id}"]["delete"];
    assert!(
        delete["responses"].get("204").is_some(),
        "DELETE documents its 204: {delete}"
    );
}

#[tokio::test]
async fn the_docs_page_serves_an_html_ui() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    // Act
    let response = app.get("/docs").await;

    // Assert
    assert_eq!(response.status().as_u16(), 200);
    assert!(header(&response, "content-type").starts_with("text/html"));
    let page = response.text().await.unwrap();
    assert!(
        page.contains("openapi.json"),
        "the UI must load the API document"
    );
}

#[tokio::test]
async fn an_unknown_route_returns_404_problem_json() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    // Act
    let response = app.get("/api/nothing-here").await;

    // Assert
    assert_problem(response, 404, "not_found").await;
}

#[tokio::test]
async fn a_method_a_route_does_not_take_returns_405_problem_json() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    // Act
    let response = app
        .client
        .patch(format!("{}/api/upload", app.address))
        .send()
        .await
        .unwrap();

    // Assert
    let problem = assert_problem(response, 405, "method_not_allowed").await;
    assert!(problem["detail"].as_str().unwrap().contains("PATCH"));
}

#[tokio::test]
async fn a_valid_client_request_id_is_echoed() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let request_id = "client-3f2a9c1e-7b44-4d0e";

    // Act
    let response = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", request_id)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(header(&response, "x-request-id"), request_id);
}

#[tokio::test]
async fn every_response_carries_a_request_id_even_errors() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    for path in ["/healthz", "/api/nothing-here"] {
        // Act
        let response = app.get(path).await;

        // Assert
        assert!(
            !header(&response, "x-request-id").is_empty(),
            "{path} has no x-request-id"
        );
    }
}

#[tokio::test]
async fn an_oversized_client_request_id_is_replaced() {
    // Arrange: ids end up in every log line, so an unbounded one is not trusted.
    let app = spawn_app(Backend::Local).await;
    let oversized = "x".repeat(200);

    // Act
    let response = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", &oversized)
        .send()
        .await
        .unwrap();

    // Assert
    let echoed = header(&response, "x-request-id");
    assert!(!echoed.is_empty() && echoed != oversized, "got {echoed:?}");
}
