//! The upload policy: per-owner size limits, the content-type allow-list and required
//! checksums are refused at request time and, once signed, enforced by storage itself.

use cloud_asset_uploader::config::{OwnerLimits, Settings};
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::tokens::use_jwt;
use crate::helpers::{
    Backend, Caller, SignedInfo, UploadGrant, assert_problem, assert_success, describe,
    json_with_status, sample_file, sha256_base64, spawn_app_with,
};

/// JWT auth, a global `max_size` of 1 KiB, and 4 KiB for the owner `big`.
fn size_limits(settings: &mut Settings) {
    use_jwt(settings);
    settings.uploads.max_size = 1024;
    settings.uploads.owner_limits = vec![OwnerLimits {
        owner: "big".into(),
        max_size: Some(4096),
        max_pending_uploads: None,
        max_total_bytes: None,
    }];
}

/// Only images and PDFs.
fn images_and_pdfs(settings: &mut Settings) {
    settings.uploads.allowed_content_types = vec!["image/*".into(), "application/pdf".into()];
}

/// The same signed request with another media type: a `PUT` header or a form field.
fn with_content_type(signed: &SignedInfo, content_type: &str) -> SignedInfo {
    match signed {
        SignedInfo::Put { .. } => signed.with_header("content-type", content_type),
        SignedInfo::Post { url, fields } => {
            let mut fields = fields.clone();
            fields.insert("Content-Type".into(), content_type.into());
            SignedInfo::Post {
                url: url.clone(),
                fields,
            }
        }
    }
}

/// Asserts storage refused the upload (the status differs between backends) and kept
/// nothing: the asset's owner cannot complete it.
async fn assert_refused_by_storage(
    owner: &Caller<'_>,
    response: Response,
    grant: &UploadGrant,
    what: &str,
) {
    let status = response.status();
    assert!(
        status.is_client_error(),
        "{what}: {}",
        describe(response).await
    );
    let completion = owner.mark_status(grant.asset_id, "complete").await;
    assert_problem(completion, 409, "upload_not_found").await;
}

#[tokio::test]
async fn a_declared_length_over_the_owners_own_max_size_returns_413() {
    // Arrange
    let app = spawn_app_with(Backend::Local, size_limits).await;
    let (big, other) = (app.as_owner("big"), app.as_owner("other"));
    let declaring =
        |length: u64| json!({ "object_key": format!("{length}.bin"), "content_length": length });

    // Act
    let big_at_limit = big.request_upload(&declaring(4096)).await;
    let big_over = big.request_upload(&declaring(4097)).await;
    let other_at_limit = other.request_upload(&declaring(1024)).await;
    let other_over = other.request_upload(&declaring(1025)).await;

    // Assert
    assert_eq!(
        big_at_limit.status().as_u16(),
        201,
        "the override raises big's limit"
    );
    assert_problem(big_over, 413, "upload_too_large").await;
    assert_eq!(other_at_limit.status().as_u16(), 201, "the global limit");
    assert_problem(other_over, 413, "upload_too_large").await;
}

#[tokio::test]
async fn storage_enforces_each_owners_max_size_on_uploads_of_undeclared_length() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange
        let app = spawn_app_with(backend, size_limits).await;
        let (big, other) = (app.as_owner("big"), app.as_owner("other"));
        let undeclared = json!({ "object_key": "undeclared.bin" });
        let bigs = big.new_upload(&undeclared).await;
        let others = other.new_upload(&undeclared).await;
        let file = sample_file(2048);

        // Act
        let accepted = app.upload_file(&bigs.signed_info, &file).await;
        let refused = app.upload_file(&others.signed_info, &file).await;

        // Assert
        assert_success(accepted).await;
        let what = format!("{backend:?}: 2 KiB over other's 1 KiB");
        assert_refused_by_storage(&other, refused, &others, &what).await;
    }
}

#[tokio::test]
async fn a_content_type_outside_the_allow_list_is_refused_at_request_time() {
    // Arrange
    let app = spawn_app_with(Backend::Local, images_and_pdfs).await;
    let cases: [(Value, u16, &str, &str); 4] = [
        (
            json!("text/html"),
            415,
            "content_type_not_allowed",
            "not listed",
        ),
        (
            json!("application/json"),
            415,
            "content_type_not_allowed",
            "not listed either",
        ),
        (
            json!("imagex/png"),
            415,
            "content_type_not_allowed",
            "image/* covers image only",
        ),
        (
            Value::Null,
            400,
            "validation_failed",
            "a restricted list makes the type required",
        ),
    ];
    let allowed = ["image/png", "IMAGE/WEBP", "application/pdf"];

    for (content_type, status, code, reason) in cases {
        // Act
        let body = json!({ "object_key": "f", "content_type": content_type });
        let response = app.request_upload(&body).await;

        // Assert
        assert_eq!(
            response.status().as_u16(),
            status,
            "{content_type}: {reason}"
        );
        let problem = assert_problem(response, status, code).await;
        if content_type.is_null() {
            assert_eq!(problem["field"], "content_type", "{problem}");
        }
    }
    for (i, content_type) in allowed.into_iter().enumerate() {
        let body = json!({ "object_key": format!("ok-{i}"), "content_type": content_type });
        let response = app.request_upload(&body).await;
        assert_eq!(response.status().as_u16(), 201, "{content_type} is allowed");
    }
}

#[tokio::test]
async fn storage_refuses_a_media_type_other_than_the_allowed_one_that_was_signed() {
    let uploads = [
        (Backend::Local, Some(8), "a signed PUT"),
        (Backend::S3, Some(8), "a presigned PUT"),
        (
            Backend::S3,
            None,
            "a POST form, whose policy names the type",
        ),
    ];
    for (backend, content_length, kind) in uploads {
        // Arrange
        let app = spawn_app_with(backend, images_and_pdfs).await;
        let body = json!({
            "object_key": "pic.png",
            "content_type": "image/png",
            "content_length": content_length,
        });
        let grant = app.new_upload(&body).await;
        let disguised = with_content_type(&grant.signed_info, "text/html");

        // Act
        let response = app.upload_file(&disguised, b"<script>").await;

        // Assert
        assert_refused_by_storage(&app.with_headers(&[]), response, &grant, kind).await;
        let as_signed = app
            .upload_file(&grant.signed_info, b"\x89PNG\r\n\x1a\n")
            .await;
        assert_success(as_signed).await;
    }
}

#[tokio::test]
async fn with_require_checksum_an_upload_without_a_valid_checksum_returns_400() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |s| s.uploads.require_checksum = true).await;
    let digest = sha256_base64(b"hello");
    let cases = [
        (
            json!({ "content_length": 5 }),
            "checksum_sha256",
            "no checksum at all",
        ),
        (
            json!({ "content_length": 5, "checksum_sha256": "" }),
            "checksum_sha256",
            "an empty one",
        ),
        (
            json!({ "checksum_sha256": digest }),
            "checksum_sha256",
            "no length to check it against",
        ),
        (
            json!({ "content_length": 5, "part_checksums": true }),
            "checksum_sha256",
            "part checksums on an upload in one request, which has no parts",
        ),
    ];

    for (mut body, field, reason) in cases {
        // Act
        body["object_key"] = json!("checked.txt");
        let response = app.request_upload(&body).await;

        // Assert
        let problem = assert_problem(response, 400, "validation_failed").await;
        assert_eq!(problem["field"], field, "{reason}: {problem}");
    }
    let valid =
        json!({ "object_key": "checked.txt", "content_length": 5, "checksum_sha256": digest });
    assert_eq!(app.request_upload(&valid).await.status().as_u16(), 201);
    let in_checked_parts = json!({
        "object_key": "parts.bin", "content_length": 5, "multipart": true, "part_checksums": true,
    });
    assert_eq!(
        app.request_upload(&in_checked_parts)
            .await
            .status()
            .as_u16(),
        201,
        "parts signed with their checksums satisfy the requirement"
    );
}

#[tokio::test]
async fn with_require_checksum_bytes_that_do_not_match_never_complete_on_either_backend() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange
        let app = spawn_app_with(backend, |s| s.uploads.require_checksum = true).await;
        let body = json!({
            "object_key": "checked.txt",
            "content_length": 5,
            "checksum_sha256": sha256_base64(b"hello"),
        });
        let grant = app.new_upload(&body).await;

        // Act
        let response = app.upload_file(&grant.signed_info, b"jello").await;

        // Assert
        assert_eq!(
            response.status().as_u16(),
            400,
            "{backend:?}: {}",
            describe(response).await
        );
        // The s3s stand-in for MinIO answers 400 but keeps the bytes; completion re-checks them.
        let completion = app.mark_status(grant.asset_id, "complete").await;
        let problem: Value = json_with_status(completion, 409).await;
        let code = problem["code"].as_str().unwrap_or_default();
        assert!(
            matches!(code, "upload_not_found" | "upload_mismatch"),
            "{backend:?}: {problem}"
        );
    }
}
