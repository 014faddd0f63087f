//! The local backend's own signed `/storage` URLs, where they go beyond what both backends do
//! (`signed_urls`): a truncated body, a tampered URL or one used for the other method is
//! refused without leaving a partial object behind. (Form uploads: `local_forms`; parts:
//! `multipart` and `local_multipart`.)

use serde_json::json;
use url::Url;

use crate::helpers::{
    AccessGrant, Backend, SignedInfo, assert_nothing_stored, json_with_status, sample_file,
    spawn_app, spawn_app_with,
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
async fn a_body_shorter_than_declared_is_refused_with_400_and_nothing_is_kept() {
    // Arrange
    let app = spawn_app(Backend::Local).await;
    let grant = app
        .new_upload(&json!({ "object_key": "shorter.bin", "content_length": 10 }))
        .await;

    // Act
    let response = app.upload_file(&grant.signed_info, &sample_file(9)).await;

    // Assert
    assert_eq!(response.status().as_u16(), 400, "a truncated upload");
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
