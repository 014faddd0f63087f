//! What a signed URL allows, on both backends: bytes go in and come back intact, and a body or
//! request the signature does not allow is refused without completing the asset. Each body runs
//! once per backend; where the backends refuse with statuses of their own, the two tests say
//! which. (What only one backend does: `local_storage`, `s3_storage`.)

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    AccessGrant, Backend, SignedInfo, assert_nothing_stored, assert_problem_in, assert_status,
    assert_success, describe, header, json_with_status, sample_file, sha256_base64, spawn_app,
    spawn_app_with,
};

async fn a_file_put_to_its_signed_url_comes_back_intact_from_the_download_url(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let file = sample_file(300 * 1024);
    let grant = app
        .new_upload(&json!({
            "object_key": "images/photo.png",
            "content_type": "image/png",
            "content_length": file.len(),
            "checksum_sha256": sha256_base64(&file),
        }))
        .await;
    let SignedInfo::Put { headers, .. } = &grant.signed_info else {
        panic!(
            "a declared length is signed as a PUT, got {:?}",
            grant.signed_info
        );
    };
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("image/png")
    );

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
async fn a_file_put_to_its_signed_url_comes_back_intact_from_the_download_url_on_local_storage() {
    a_file_put_to_its_signed_url_comes_back_intact_from_the_download_url(Backend::Local).await;
}

#[tokio::test]
async fn a_file_put_to_its_signed_url_comes_back_intact_from_the_download_url_on_s3() {
    a_file_put_to_its_signed_url_comes_back_intact_from_the_download_url(Backend::S3).await;
}

/// Without a declared length the local backend signs a `PUT` that carries the limit, S3 a `POST`
/// form whose policy does.
async fn an_undeclared_upload_is_accepted_up_to_the_maximum_size_and_refused_beyond(
    backend: Backend,
    refused_with: u16,
) {
    // Arrange
    let app = spawn_app_with(backend, |s| s.uploads.max_size = 16).await;
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
    assert_status(refused, refused_with).await;
    assert_nothing_stored(&app, over_limit.asset_id).await;
    assert_status(app.mark_status(at_limit.asset_id, "complete").await, 200).await;
}

#[tokio::test]
async fn an_undeclared_upload_is_accepted_up_to_the_maximum_size_and_refused_beyond_with_413_on_local_storage()
 {
    an_undeclared_upload_is_accepted_up_to_the_maximum_size_and_refused_beyond(Backend::Local, 413)
        .await;
}

#[tokio::test]
async fn an_undeclared_upload_is_accepted_up_to_the_maximum_size_and_refused_beyond_with_400_on_s3()
{
    an_undeclared_upload_is_accepted_up_to_the_maximum_size_and_refused_beyond(Backend::S3, 400)
        .await;
}

/// `refused_with`: the statuses the backend may refuse it with.
async fn a_body_longer_than_the_signed_length_is_refused_and_nothing_is_kept(
    backend: Backend,
    refused_with: &[u16],
) {
    // Arrange
    let app = spawn_app(backend).await;
    let grant = app
        .new_upload(&json!({ "object_key": "ten.bin", "content_length": 10 }))
        .await;

    // Act
    let response = app.upload_file(&grant.signed_info, &sample_file(11)).await;

    // Assert
    assert!(
        refused_with.contains(&response.status().as_u16()),
        "expected one of {refused_with:?}, got {}",
        describe(response).await
    );
    assert_nothing_stored(&app, grant.asset_id).await;
}

#[tokio::test]
async fn a_body_longer_than_the_signed_length_is_refused_and_nothing_is_kept_on_local_storage() {
    a_body_longer_than_the_signed_length_is_refused_and_nothing_is_kept(Backend::Local, &[413])
        .await;
}

#[tokio::test]
async fn a_body_longer_than_the_signed_length_is_refused_and_nothing_is_kept_on_s3() {
    // S3 implementations differ in which of the two they answer.
    a_body_longer_than_the_signed_length_is_refused_and_nothing_is_kept(Backend::S3, &[403, 400])
        .await;
}

/// `completion_refused_as`: the problem codes completing the asset may be refused with afterwards.
async fn a_body_not_matching_the_declared_checksum_is_refused_with_400_and_never_completes(
    backend: Backend,
    completion_refused_as: &[&str],
) {
    // Arrange
    let app = spawn_app(backend).await;
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
    assert_status(response, 400).await;
    let completion = app.mark_status(grant.asset_id, "complete").await;
    assert_problem_in(completion, 409, completion_refused_as).await;
}

#[tokio::test]
async fn a_body_not_matching_the_declared_checksum_is_refused_with_400_and_never_completes_on_local_storage()
 {
    // The local backend keeps nothing of it.
    a_body_not_matching_the_declared_checksum_is_refused_with_400_and_never_completes(
        Backend::Local,
        &["upload_not_found"],
    )
    .await;
}

#[tokio::test]
async fn a_body_not_matching_the_declared_checksum_is_refused_with_400_and_never_completes_on_s3() {
    // S3 and MinIO discard a body whose checksum fails; the s3s-fs stand-in answers 400 but
    // keeps the bytes. Either way the asset must not become complete.
    a_body_not_matching_the_declared_checksum_is_refused_with_400_and_never_completes(
        Backend::S3,
        &["upload_not_found", "upload_mismatch"],
    )
    .await;
}

async fn a_content_type_other_than_the_signed_one_is_refused_with_403(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
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
async fn a_content_type_other_than_the_signed_one_is_refused_with_403_on_local_storage() {
    a_content_type_other_than_the_signed_one_is_refused_with_403(Backend::Local).await;
}

#[tokio::test]
async fn a_content_type_other_than_the_signed_one_is_refused_with_403_on_s3() {
    a_content_type_other_than_the_signed_one_is_refused_with_403(Backend::S3).await;
}

async fn an_expired_upload_url_is_refused_with_403(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let grant = app
        .new_upload(&json!({ "object_key": "late.txt", "content_length": 8, "expires_in": 1 }))
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Act
    let response = app.upload_file(&grant.signed_info, b"too late").await;

    // Assert
    assert_status(response, 403).await;
    assert_nothing_stored(&app, grant.asset_id).await;
}

#[tokio::test]
async fn an_expired_upload_url_is_refused_with_403_on_local_storage() {
    an_expired_upload_url_is_refused_with_403(Backend::Local).await;
}

#[tokio::test]
async fn an_expired_upload_url_is_refused_with_403_on_s3() {
    an_expired_upload_url_is_refused_with_403(Backend::S3).await;
}

async fn an_expired_download_url_is_refused_with_403(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let asset_id = app.store("fleeting.txt", b"fleeting").await;
    let access: AccessGrant = json_with_status(app.access(asset_id, Some(1)).await, 200).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Act
    let response = app.download(&access.url).await;

    // Assert
    assert_status(response, 403).await;
}

#[tokio::test]
async fn an_expired_download_url_is_refused_with_403_on_local_storage() {
    an_expired_download_url_is_refused_with_403(Backend::Local).await;
}

#[tokio::test]
async fn an_expired_download_url_is_refused_with_403_on_s3() {
    an_expired_download_url_is_refused_with_403(Backend::S3).await;
}
