//! Forms the API never issues, signed outside it: one carrying a checksum (the API asks for
//! a length with a checksum, so it signs a `PUT`), and one for the store marker.

use std::time::Duration;

use cloud_asset_uploader::domain::Sha256Checksum;
use cloud_asset_uploader::storage::{self, SignedUpload, UploadSpec};

use super::{file_part, pairs, post};
use crate::helpers::{Backend, assert_problem, sha256_base64, spawn_app_with};

#[tokio::test]
async fn a_checksum_signed_into_a_form_is_enforced() {
    let mut captured = None;
    let app = spawn_app_with(Backend::Local, |s| captured = Some(s.clone())).await;
    let storage = storage::from_settings(&captured.unwrap(), &app.address.parse().unwrap())
        .await
        .unwrap();
    let checksum = Sha256Checksum::parse(&sha256_base64(b"hello")).unwrap();
    let key = "uploads/anonymous/checked/hello.txt";
    // The API asks for content_length with a checksum; the storage layer signs either way.
    let signed = storage
        .presign_upload(&UploadSpec {
            storage_key: key,
            content_type: None,
            content_length: None,
            checksum_sha256: Some(&checksum),
            max_size: 1024,
            expires_in: Duration::from_secs(60),
        })
        .await
        .unwrap();
    let SignedUpload::Post { url, fields } = signed else {
        panic!("a form was expected, got {signed:?}");
    };

    let wrong = post(
        &app,
        &url,
        &pairs(&fields),
        Some(file_part(b"jello", None)),
        &[],
    )
    .await;
    assert_problem(wrong, 400, "checksum_mismatch").await;
    assert!(
        storage.stat(key, false).await.unwrap().is_none(),
        "nothing kept"
    );
    let right = post(
        &app,
        &url,
        &pairs(&fields),
        Some(file_part(b"hello", None)),
        &[],
    )
    .await;
    assert_eq!(right.status().as_u16(), 204);
    assert_eq!(
        storage.stat(key, false).await.unwrap().map(|o| o.size),
        Some(5)
    );
}

#[tokio::test]
async fn no_form_reaches_the_store_marker() {
    use cloud_asset_uploader::storage::local::{SignedMethod, SignedRequest, UrlSigner};
    // The test knows the signing key, so it can sign what the server never would.
    let signing_key = "forms-test-signing-key-0123456789abcdef";
    let app = spawn_app_with(Backend::Local, |s| {
        s.storage.local.signing_key = Some(secrecy::SecretString::from(signing_key.to_owned()));
    })
    .await;
    let marker = "uploads/.store-id";
    let request = SignedRequest {
        method: SignedMethod::Post,
        bucket: "assets".into(),
        key: marker.into(),
        expires: chrono::Utc::now().timestamp() + 60,
        max_size: Some(100),
        length: None,
        content_type: None,
        checksum_sha256: None,
        part: None,
    };
    let mut fields: Vec<(String, String)> = UrlSigner::new(signing_key.as_bytes())
        .signed_params(&request)
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    fields.push(("key".into(), marker.into()));
    let path = app.local_root().join("assets").join(marker);
    let before = std::fs::read(&path).expect("the server wrote its marker");

    let url = format!("{}/storage/assets", app.address);
    let response = post(&app, &url, &fields, Some(file_part(b"x", None)), &[]).await;

    assert_problem(response, 403, "signature_mismatch").await;
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the marker is untouched"
    );
}
