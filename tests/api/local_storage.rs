//! The local backend's own signed `/storage` URLs: bytes go in and out intact, and anything
//! the signature does not allow is refused without leaving a partial object behind. (Form
//! uploads: `local_forms`; parts: `multipart` and `local_multipart`.)

use std::time::Duration;

use serde_json::json;
use url::Url;

use crate::helpers::{
    AccessGrant, Backend, SignedInfo, assert_nothing_stored, assert_status, assert_success, header,
    json_with_status, sample_file, sha256_base64, spawn_app, spawn_app_with,
};

/// Replaces (or, with `None`, removes) one query parameter of a signed URL.
pub fn tamper(url: &str, name: &str, value: Option<&str>) -> String {
    let mut url = Url::parse(url).expect("signed URLs are URLs");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter_map(|(key, original)| match (key == name, value) {
            (false, _) => Some((key.into_owned(), original.into_owned())),
            (true, replacement) => replacement.map(|r| (key.into_owned(), r.to_owned())),
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

#[tokio::test]
async fn a_file_put_to_its_signed_url_comes_back_intact_from_the_download_url() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let file = sample_file(300 * 1024);
    let grant = app
        .new_upload(&json!({
            "object_key": "images/photo.png",
            "content_type": "image/png",
            "content_length": file.len(),
            "checksum_sha256": sha256_base64(&file),
        }))
        .await;

    // Act
    let uploaded = app.upload_file(&grant.signed_info, &file).await;
    let completed = app.mark_status(grant.asset_id, "complete").await;
    let access: AccessGrant = json_with_status(app.access(grant.asset_id, None).await, 200).await;
    let downloaded = app.download(&access.url).await;

    // Assert
    assert_success(uploaded).await;
    assert_status(completed, 200).await;
    assert_eq!(downloaded.status().as_u16(), 200);
    assert_eq!(header(&downloaded, "content-type"), "image/png");
    assert!(
        downloaded.bytes().await.unwrap() == file,
        "the downloaded bytes differ from the upload"
    );
}

#[tokio::test]
async fn an_undeclared_upload_is_accepted_up_to_the_maximum_size_and_refused_beyond_with_413() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |s| s.uploads.max_size = 16).await;
    let at_limit = app
        .new_upload(&json!({ "object_key": "sixteen.bin" }))
        .await;
    let over_limit = app
        .new_upload(&json!({ "object_key": "seventeen.bin" }))
        .await;

    // Act
    let accepted = app
        .upload_file(&at_limit.signed_info, &sample_file(16))
        .await;
    let refused = app
        .upload_file(&over_limit.signed_info, &sample_file(17))
        .await;

    // Assert
    assert_success(accepted).await;
    assert_eq!(refused.status().as_u16(), 413);
    assert_nothing_stored(&app, over_limit.asset_id).await;
    assert_eq!(
        app.mark_status(at_limit.asset_id, "complete")
            .await
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn a_body_of_another_length_than_declared_is_refused_and_nothing_is_kept() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let cases = [
        ("shorter.bin", 9, 400, "a truncated upload"),
        ("longer.bin", 11, 413, "more than was signed for"),
    ];

    for (object_key, sent, status, reason) in cases {
        let grant = app
            .new_upload(&json!({ "object_key": object_key, "content_length": 10 }))
            .await;

        // Act
        let response = app
            .upload_file(&grant.signed_info, &sample_file(sent))
            .await;

        // Assert
        assert_eq!(response.status().as_u16(), status, "{reason}");
        assert_nothing_stored(&app, grant.asset_id).await;
    }
}

#[tokio::test]
async fn a_body_not_matching_the_declared_checksum_is_refused_with_400_and_nothing_is_kept() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let grant = app
        .new_upload(&json!({
            "object_key": "checked.txt",
            "content_length": 5,
            "checksum_sha256": sha256_base64(b"hello"),
        }))
        .await;

    // Act
    let response = app.upload_file(&grant.signed_info, b"jello").await;

    // Assert
    assert_eq!(response.status().as_u16(), 400);
    assert_nothing_stored(&app, grant.asset_id).await;
}

#[tokio::test]
async fn a_content_type_other_than_the_signed_one_is_refused_with_403() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let grant = app
        .new_upload(
            &json!({ "object_key": "page.txt", "content_type": "text/plain", "content_length": 9 }),
        )
        .await;

    for sent in ["text/html", "text/plain; charset=utf-8"] {
        // Act
        let response = app
            .upload_file(
                &grant.signed_info.with_header("content-type", sent),
                b"<p>hi</p>",
            )
            .await;

        // Assert
        assert_eq!(response.status().as_u16(), 403, "{sent} was not signed");
    }
    assert_nothing_stored(&app, grant.asset_id).await;
}

#[tokio::test]
async fn an_expired_upload_url_is_refused_with_403() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let grant = app
        .new_upload(&json!({ "object_key": "late.txt", "content_length": 8, "expires_in": 1 }))
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Act
    let response = app.upload_file(&grant.signed_info, b"too late").await;

    // Assert
    assert_eq!(response.status().as_u16(), 403);
    assert_nothing_stored(&app, grant.asset_id).await;
}

#[tokio::test]
async fn a_tampered_upload_url_is_refused_with_403() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |s| s.uploads.max_size = 4096).await;
    let grant = app
        .new_upload(&json!({ "object_key": "guarded.bin", "content_length": 2048 }))
        .await;
    let url = grant.signed_info.url().to_owned();
    let far_future = (chrono::Utc::now().timestamp() + 86_400).to_string();
    let other_key = url.replacen("guarded.bin", "other.bin", 1);
    let cases = [
        (
            tamper(&url, "max_size", Some("1048576")),
            "a raised size limit",
        ),
        (tamper(&url, "length", Some("2049")), "another length"),
        (
            tamper(&url, "expires", Some(&far_future)),
            "a pushed-back expiry",
        ),
        (
            tamper(&url, "signature", Some(&"0".repeat(64))),
            "a forged signature",
        ),
        (tamper(&url, "signature", None), "no signature at all"),
        (tamper(&url, "max_size", None), "a dropped size limit"),
        (other_key, "another object's path"),
    ];

    for (tampered, reason) in cases {
        // Act
        let response = app
            .upload_file(&grant.signed_info.with_url(tampered), &sample_file(2048))
            .await;

        // Assert
        assert_eq!(response.status().as_u16(), 403, "{reason}");
    }
    assert_nothing_stored(&app, grant.asset_id).await;
}

#[tokio::test]
async fn a_signature_is_valid_only_for_the_method_it_was_issued_for() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let asset_id = app.store("methods.txt", b"original").await;
    let access: AccessGrant = json_with_status(app.access(asset_id, None).await, 200).await;
    let upload = app
        .new_upload(&json!({ "object_key": "pending-methods.txt", "content_length": 4 }))
        .await;

    // Act
    let overwrite = app
        .upload_file(
            &SignedInfo::Put {
                url: access.url.clone(),
                headers: Default::default(),
            },
            b"evil",
        )
        .await;
    let read_through_upload_url = app.download(upload.signed_info.url()).await;

    // Assert
    assert_eq!(
        overwrite.status().as_u16(),
        403,
        "a download URL must not accept uploads"
    );
    assert_eq!(
        read_through_upload_url.status().as_u16(),
        403,
        "an upload URL must not serve downloads"
    );
    let still = app.download(&access.url).await;
    assert!(
        still.bytes().await.unwrap() == b"original".as_slice(),
        "the stored object was overwritten"
    );
}

#[tokio::test]
async fn an_expired_download_url_is_refused_with_403() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let asset_id = app.store("fleeting.txt", b"fleeting").await;
    let access: AccessGrant = json_with_status(app.access(asset_id, Some(1)).await, 200).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Act
    let response = app.download(&access.url).await;

    // Assert
    assert_eq!(response.status().as_u16(), 403);
}

#[tokio::test]
async fn a_tampered_download_url_is_refused_with_403() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let asset_id = app.store("secret.txt", b"secret").await;
    let access: AccessGrant = json_with_status(app.access(asset_id, None).await, 200).await;
    let far_future = (chrono::Utc::now().timestamp() + 86_400).to_string();
    let cases = [
        (
            tamper(&access.url, "expires", Some(&far_future)),
            "a pushed-back expiry",
        ),
        (
            tamper(&access.url, "signature", Some(&"0".repeat(64))),
            "a forged signature",
        ),
        (
            access.url.replacen("secret.txt", "other.txt", 1),
            "another object's path",
        ),
    ];

    for (tampered, reason) in cases {
        // Act
        let response = app.download(&tampered).await;

        // Assert
        assert_eq!(response.status().as_u16(), 403, "{reason}");
    }
}
