//! `POST /api/upload` refusals: every malformed or out-of-bounds request gets a problem with
//! a stable code, and validation errors name the offending field.

use serde_json::{Value, json};

use crate::helpers::tokens::use_jwt;
use crate::helpers::{
    Backend, assert_problem, assert_status, json_with_status, sha256_base64, spawn_app,
    spawn_app_with,
};

#[tokio::test]
async fn a_declared_length_over_the_maximum_upload_size_returns_413_upload_too_large() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |s| s.uploads.max_size = 1024).await;

    // Act
    let at_limit = app
        .request_upload(&json!({ "object_key": "at-limit", "content_length": 1024 }))
        .await;
    let over_limit = app
        .request_upload(&json!({ "object_key": "over-limit", "content_length": 1025 }))
        .await;

    // Assert
    assert_eq!(
        at_limit.status().as_u16(),
        201,
        "exactly max_size is allowed"
    );
    assert_problem(over_limit, 413, "upload_too_large").await;
}

#[tokio::test]
async fn invalid_fields_return_400_validation_failed_naming_the_field() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let digest = sha256_base64(b"hello");
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({}), "object_key", "the key is required"),
        (
            json!({ "object_key": 42 }),
            "object_key",
            "the key must be a string",
        ),
        (
            json!({ "object_key": "" }),
            "object_key",
            "an empty key names nothing",
        ),
        (
            json!({ "object_key": "/etc/passwd" }),
            "object_key",
            "a leading '/' makes the key absolute",
        ),
        (
            json!({ "object_key": "a/../b" }),
            "object_key",
            "'..' could climb out of the owner's prefix",
        ),
        (
            json!({ "object_key": "a\\b" }),
            "object_key",
            "a backslash is a separator on some systems",
        ),
        (
            json!({ "object_key": "a\nb" }),
            "object_key",
            "control characters break logs and headers",
        ),
        (
            json!({ "object_key": "x".repeat(1025) }),
            "object_key",
            "keys are at most 1024 bytes",
        ),
        (
            json!({ "object_key": "a", "expires_in": 0 }),
            "expires_in",
            "a URL valid for no time is useless",
        ),
        (
            json!({ "object_key": "a", "expires_in": 1801 }),
            "expires_in",
            "longer than uploads.max_expires_in",
        ),
        (
            json!({ "object_key": "a", "expires_in": -5 }),
            "expires_in",
            "a lifetime cannot be negative",
        ),
        (
            json!({ "object_key": "a", "content_type": "png" }),
            "content_type",
            "not a media type",
        ),
        (
            json!({ "object_key": "a", "content_type": "image/*" }),
            "content_type",
            "a wildcard is not one file's type",
        ),
        (
            json!({ "object_key": "a", "content_length": -1 }),
            "content_length",
            "a size cannot be negative",
        ),
        (
            json!({ "object_key": "a", "content_length": 5, "checksum_sha256": "not base64!" }),
            "checksum_sha256",
            "the checksum must be base64",
        ),
        (
            json!({ "object_key": "a", "content_length": 5, "checksum_sha256": &digest[..20] }),
            "checksum_sha256",
            "a SHA-256 is 32 bytes",
        ),
        (
            json!({ "object_key": "a", "checksum_sha256": digest }),
            "",
            "a checksum can only be enforced on an upload of declared length",
        ),
        (
            json!({ "object_key": "a", "colour": "red" }),
            "colour",
            "a misspelt field must not be ignored",
        ),
    ];

    for (body, field, reason) in cases {
        // Act
        let response = app.request_upload(&body).await;

        // Assert
        let problem = assert_problem(response, 400, "validation_failed").await;
        let reported = problem["field"].as_str().unwrap_or_default();
        if field.is_empty() {
            assert!(
                !reported.is_empty(),
                "{reason}: no field named in {problem}"
            );
        } else {
            assert_eq!(reported, field, "{reason}: {problem}");
        }
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_returns_400_malformed_body() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let cases = [
        ("{", "truncated JSON"),
        ("object_key=a", "a form body sent as JSON"),
        (
            r#"{"object_key": "a"} trailing"#,
            "trailing data after the document",
        ),
        ("", "an empty body"),
    ];

    for (body, reason) in cases {
        // Act
        let response = app.request_upload_raw("application/json", body).await;

        // Assert
        let status = response.status();
        let problem: Value = json_with_status(response, 400).await;
        assert_eq!(
            problem["code"], "malformed_body",
            "{reason} ({status}): {problem}"
        );
    }
}

#[tokio::test]
async fn a_body_that_is_not_declared_as_json_returns_415() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let body = r#"{"object_key": "a"}"#;

    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        // Act
        let response = app.request_upload_raw(content_type, body).await;

        // Assert
        assert_problem(response, 415, "unsupported_media_type").await;
    }
}

#[tokio::test]
async fn a_body_over_64_kib_returns_413_body_too_large() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let body = json!({ "object_key": "a", "padding": "x".repeat(65 * 1024) }).to_string();

    // Act
    let response = app.request_upload_raw("application/json", body).await;

    // Assert
    assert_problem(response, 413, "body_too_large").await;
}

#[tokio::test]
async fn keys_storage_cannot_hold_are_refused_before_anything_is_recorded() {
    // A 1024-byte key fits the API's rule but not S3 once it sits under
    // `<prefix>/<owner>/<asset_id>/`; a 256-byte segment fits S3 but no file system.
    let cases = [
        (
            Backend::S3,
            "k".repeat(1024),
            "over S3's 1024 bytes with its prefix",
        ),
        (
            Backend::Local,
            "k".repeat(1024),
            "over 1024 bytes with its prefix",
        ),
        (
            Backend::Local,
            format!("dir/{}", "n".repeat(256)),
            "a name over 255 bytes",
        ),
    ];
    for (backend, key, why) in cases {
        let app = spawn_app(backend).await;
        let response = app.request_upload(&json!({ "object_key": key })).await;
        let problem = assert_problem(response, 400, "validation_failed").await;
        assert_eq!(problem["field"], "object_key", "{why}");
        assert_eq!(app.assets_of("anonymous", "pending").await.0, 0, "{why}");
    }
    let app = spawn_app(Backend::S3).await;
    let fits = app
        .request_upload(&json!({ "object_key": format!("dir/{}", "n".repeat(256)) }))
        .await;
    assert_status(fits, 201).await;
}

#[tokio::test]
async fn an_owner_with_a_long_name_can_still_upload_on_a_file_system() {
    let app = spawn_app_with(Backend::Local, use_jwt).await;
    let owner = "ü".repeat(120); // 240 bytes, 720 once percent-encoded
    let grant = app.as_owner(&owner).store("a.bin", b"long owner").await;
    let access: Value =
        json_with_status(app.as_owner(&owner).access(grant.asset_id).await, 200).await;
    let downloaded = app.download(access["url"].as_str().unwrap()).await;
    assert_eq!(downloaded.bytes().await.unwrap().as_ref(), b"long owner");
}

#[tokio::test]
async fn a_json_body_that_trickles_in_is_answered_408_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // Arrange: a client that sends the headers and a few bytes of its body, then stalls.
    let app = spawn_app_with(Backend::Local, |s| s.server.request_body_timeout_secs = 1).await;
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let body = r#"{"object_key":"slow.bin"}"#;
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..5]).await.unwrap();
    let started = std::time::Instant::now();

    // Act
    let mut answer = vec![0u8; 8192];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the server answers without the rest of the body")
        .unwrap();

    // Assert
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(app.assets_of("anonymous", "pending").await.0, 0);
}
