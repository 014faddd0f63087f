//! What the server serves to browsers from its own binary: the JavaScript client and the
//! upload page.

use crate::helpers::{Backend, header, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_client_is_served_as_a_cacheable_module_importable_from_any_origin() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    // Act
    let response = app.get("/client/uploader.js").await;
    let etag = header(&response, "etag");
    let content_type = header(&response, "content-type");
    let cache = header(&response, "cache-control");
    let cors = header(&response, "access-control-allow-origin");
    let body = response.text().await.unwrap();
    let again = app
        .client
        .get(format!("{}/client/uploader.js", app.address))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();

    // Assert
    assert!(
        content_type.starts_with("text/javascript"),
        "{content_type}"
    );
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    assert_eq!(cache, "no-cache");
    assert_eq!(cors, "*");
    assert!(
        body.contains("export class UploaderClient"),
        "the client itself"
    );
    assert_eq!(again.status().as_u16(), 304);
}

#[tokio::test]
async fn the_upload_page_is_served_with_a_strict_security_policy() {
    // Arrange
    let app = spawn_app(Backend::S3).await;

    // Act
    let page = app.get("/upload").await;
    let policy = header(&page, "content-security-policy");
    let nosniff = header(&page, "x-content-type-options");
    let referrer = header(&page, "referrer-policy");
    let html = page.text().await.unwrap();
    let script = app.get("/upload/page.js").await;
    let style = app.get("/upload/page.css").await;

    // Assert
    assert!(html.contains("/client/uploader.js") || html.contains("/upload/page.js"));
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("style-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(
        policy.contains("connect-src 'self' http://127.0.0.1:"),
        "uploads may go to the S3 endpoint: {policy}"
    );
    assert_eq!(nosniff, "nosniff");
    assert_eq!(referrer, "no-referrer");
    assert!(header(&script, "content-type").starts_with("text/javascript"));
    assert!(header(&style, "content-type").starts_with("text/css"));
}

#[tokio::test]
async fn the_page_can_be_turned_off_but_the_client_stays() {
    let app = spawn_app_with(Backend::Local, |settings| settings.ui.enabled = false).await;
    assert_eq!(app.get("/upload").await.status().as_u16(), 404);
    assert_eq!(app.get("/client/uploader.js").await.status().as_u16(), 200);
}
