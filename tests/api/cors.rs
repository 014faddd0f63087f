//! CORS: browsers on the configured origins may call the API; no other origin, and no origin
//! at all unless some are configured.

use reqwest::{Method, Response};

use crate::helpers::tokens::use_jwt;
use crate::helpers::{Backend, TestApp, header, spawn_app, spawn_app_with};

const APP_ORIGIN: &str = "https://app.example.com";

/// The preflight a browser on `origin` sends before a credentialed `POST /api/upload`.
async fn preflight(app: &TestApp, origin: &str) -> Response {
    app.client
        .request(Method::OPTIONS, format!("{}/api/upload", app.address))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("OPTIONS /api/upload")
}

/// The names of the `access-control-*` headers of `response`.
fn cors_headers(response: &Response) -> Vec<String> {
    let names = response
        .headers()
        .keys()
        .map(|name| name.as_str().to_owned());
    names
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_allowed_without_credentials() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |s| {
        use_jwt(s);
        s.cors.allowed_origins = vec![APP_ORIGIN.into()];
    })
    .await;

    // Act
    let response = preflight(&app, APP_ORIGIN).await;

    // Assert
    assert!(
        response.status().is_success(),
        "status {}",
        response.status()
    );
    assert_eq!(header(&response, "access-control-allow-origin"), APP_ORIGIN);
    let methods = header(&response, "access-control-allow-methods").to_ascii_uppercase();
    assert!(methods.contains("POST"), "allowed methods: {methods}");
    let headers = header(&response, "access-control-allow-headers").to_ascii_lowercase();
    assert!(
        headers.contains("authorization"),
        "allowed headers: {headers}"
    );
    assert_eq!(header(&response, "access-control-max-age"), "600");
}

#[tokio::test]
async fn a_preflight_from_another_origin_is_not_allowed() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |s| {
        s.cors.allowed_origins = vec![APP_ORIGIN.into()]
    })
    .await;
    let others = [
        ("https://evil.example", "an unrelated site"),
        (
            "http://app.example.com",
            "the allowed host over another scheme",
        ),
        (
            "https://app.example.com.evil.example",
            "a host that only starts like the allowed one",
        ),
    ];

    for (origin, reason) in others {
        // Act
        let response = preflight(&app, origin).await;

        // Assert
        let allowed = header(&response, "access-control-allow-origin");
        assert!(allowed.is_empty(), "{reason}: allowed {allowed:?}");
    }
}

#[tokio::test]
async fn without_configured_origins_no_response_carries_cors_headers() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    // Act
    let preflight = preflight(&app, APP_ORIGIN).await;
    let request = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("origin", APP_ORIGIN)
        .send()
        .await
        .expect("GET /healthz");

    // Assert
    assert_eq!(
        cors_headers(&preflight),
        Vec::<String>::new(),
        "the preflight"
    );
    assert_eq!(
        cors_headers(&request),
        Vec::<String>::new(),
        "a simple request"
    );
}

#[tokio::test]
async fn a_preflight_is_answered_204_and_counted_as_such() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |s| {
        use_jwt(s);
        s.cors.allowed_origins = vec![APP_ORIGIN.into()];
    })
    .await;

    // Act
    let response = preflight(&app, APP_ORIGIN).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();

    // Assert: no route's 405 (or any gate's answer) leaks into it.
    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(header(&response, "content-type"), "");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("uploader_http_requests_total")
                && l.contains("method=\"OPTIONS\"")
                && l.contains("status=\"204\"")),
        "{metrics}"
    );
}
