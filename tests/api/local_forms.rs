//! Form uploads to the local backend: the same `multipart/form-data` `POST` as an S3 POST
//! policy (the issued fields, then `file`, last), checked by the server as it streams.

mod beyond_the_api;

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{
    AccessGrant, Backend, SignedInfo, TestApp, UploadGrant, assert_nothing_stored, assert_problem,
    assert_status, header, json_with_status, sample_file, spawn_app, spawn_app_with,
};

const APP_ORIGIN: &str = "https://app.example.com";

/// Form fields a client adds to the issued ones.
type Extra = &'static [(&'static str, &'static str)];

/// The URL and fields of a form grant.
fn form_of(grant: &UploadGrant) -> (String, BTreeMap<String, String>) {
    match &grant.signed_info {
        SignedInfo::Post { url, fields } => (url.clone(), fields.clone()),
        other => panic!("an upload without content_length is a form, got {other:?}"),
    }
}

/// A form as a client might send it: `fields` in order, then `file` (if any), then `after`.
async fn post(
    app: &TestApp,
    url: &str,
    fields: &[(String, String)],
    file: Option<Part>,
    after: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = fields.iter().fold(Form::new(), |form, (name, value)| {
        form.text(name.clone(), value.clone())
    });
    if let Some(file) = file {
        form = form.part("file", file);
    }
    for (name, value) in after {
        form = form.text((*name).to_owned(), (*value).to_owned());
    }
    app.client.post(url).multipart(form).send().await.unwrap()
}

fn file_part(bytes: &[u8], content_type: Option<&str>) -> Part {
    let part = Part::bytes(bytes.to_vec()).file_name("upload.bin");
    match content_type {
        Some(mime) => part.mime_str(mime).unwrap(),
        None => part,
    }
}

fn pairs(fields: &BTreeMap<String, String>) -> Vec<(String, String)> {
    fields.iter().map(|(n, v)| (n.clone(), v.clone())).collect()
}

#[tokio::test]
async fn a_file_posted_with_the_signed_form_comes_back_intact() {
    let app = spawn_app(Backend::Local).await;
    let file = sample_file(300 * 1024);
    let grant = app
        .new_upload(&json!({ "object_key": "docs/form upload.txt", "content_type": "text/plain" }))
        .await;
    let (url, fields) = form_of(&grant);
    assert!(
        url.ends_with("/storage/assets"),
        "posted to the bucket: {url}"
    );
    assert_eq!(fields["Content-Type"], "text/plain");
    assert!(
        fields["key"].ends_with("/docs/form upload.txt"),
        "{fields:?}"
    );

    let uploaded = app.upload_file(&grant.signed_info, &file).await;
    assert_eq!(uploaded.status().as_u16(), 204);
    let etag = format!("\"{}\"", hex::encode(Sha256::digest(&file)));
    assert_eq!(header(&uploaded, "etag"), etag);
    assert_status(app.mark_status(grant.asset_id, "complete").await, 200).await;
    let access: AccessGrant = json_with_status(app.access(grant.asset_id, None).await, 200).await;
    let downloaded = app.download(&access.url).await;
    assert_eq!(header(&downloaded, "content-type"), "text/plain");
    assert!(
        downloaded.bytes().await.unwrap() == file,
        "the bytes differ"
    );

    // S3's policy allows 0 to max_size bytes; so does this one.
    let empty = app.new_upload(&json!({ "object_key": "empty.txt" })).await;
    assert_eq!(
        app.upload_file(&empty.signed_info, b"")
            .await
            .status()
            .as_u16(),
        204
    );
    assert_status(app.mark_status(empty.asset_id, "complete").await, 200).await;
}

#[tokio::test]
async fn a_declared_content_type_other_than_the_signed_one_is_refused_with_403() {
    let app = spawn_app(Backend::Local).await;
    let cases = [
        (Some("text/html"), None, 403, "another Content-Type field"),
        (
            None,
            Some("text/html"),
            403,
            "no field, and a file of another type",
        ),
        (None, None, 403, "no type at all"),
        (
            None,
            Some("text/plain"),
            204,
            "no field, and a file of the signed type",
        ),
    ];
    for (i, (field, part_type, status, why)) in cases.into_iter().enumerate() {
        let body = json!({ "object_key": format!("typed/{i}.txt"), "content_type": "text/plain" });
        let grant = app.new_upload(&body).await;
        let (url, mut fields) = form_of(&grant);
        fields.remove("Content-Type");
        let mut sent = pairs(&fields);
        if let Some(field) = field {
            sent.push(("Content-Type".into(), field.into()));
        }

        let response = post(&app, &url, &sent, Some(file_part(b"hi", part_type)), &[]).await;

        assert_eq!(response.status().as_u16(), status, "{why}");
        if status == 403 {
            assert_problem(response, 403, "content_type_mismatch").await;
            assert_nothing_stored(&app, grant.asset_id).await;
        }
    }
}

#[tokio::test]
async fn a_form_that_is_not_the_one_issued_is_refused_with_400_and_nothing_is_kept() {
    let app = spawn_app(Backend::Local).await;
    let file = Some(b"payload".as_slice());
    // Fields added before the file, fields after it, the file, and what the refusal says.
    let cases: [(Extra, Extra, Option<&[u8]>, &str); 5] = [
        (
            &[],
            &[("Content-Type", "text/plain")],
            file,
            "comes after `file`",
        ),
        (
            &[("acl", "public-read")],
            &[],
            file,
            "`acl` is not one the server issued",
        ),
        (&[("expires", "1")], &[], file, "`expires` appears twice"),
        (&[], &[], None, "no `file` field"),
        (&[], &[("file", "again")], file, "`file` comes after `file`"),
    ];
    for (i, (before, after, bytes, says)) in cases.into_iter().enumerate() {
        let grant = app
            .new_upload(&json!({ "object_key": format!("bad/{i}") }))
            .await;
        let (url, fields) = form_of(&grant);
        let mut sent = pairs(&fields);
        sent.extend(
            before
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );

        let response = post(&app, &url, &sent, bytes.map(|b| file_part(b, None)), after).await;

        let problem = assert_problem(response, 400, "malformed_form").await;
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{says}: {problem}"
        );
        assert_nothing_stored(&app, grant.asset_id).await;
    }
    let grant = app.new_upload(&json!({ "object_key": "raw" })).await;
    let (url, _) = form_of(&grant);
    let raw = app
        .client
        .post(&url)
        .body("just bytes")
        .send()
        .await
        .unwrap();
    assert_problem(raw, 400, "malformed_form").await;
}

#[tokio::test]
async fn altered_or_expired_form_fields_are_refused_with_403() {
    let app = spawn_app_with(Backend::Local, |s| s.uploads.max_size = 1024).await;
    let grant = app
        .new_upload(&json!({ "object_key": "guarded.bin", "content_type": "text/plain" }))
        .await;
    let (url, fields) = form_of(&grant);
    let far_future = (chrono::Utc::now().timestamp() + 86_400).to_string();
    let other_key = fields["key"].replace("guarded.bin", "other.bin");
    let cases: [(&str, Option<&str>, &str); 6] = [
        ("max_size", Some("1048576"), "signature_mismatch"),
        ("expires", Some(&far_future), "signature_mismatch"),
        ("signature", Some(&"0".repeat(64)), "signature_mismatch"),
        ("signature", None, "signature_missing"),
        ("key", Some(&other_key), "signature_mismatch"),
        ("content_type", Some("text/html"), "signature_mismatch"),
    ];
    for (name, value, code) in cases {
        let mut altered = fields.clone();
        match value {
            Some(value) => altered.insert(name.to_owned(), value.to_owned()),
            None => altered.remove(name),
        };
        let file = Some(file_part(b"small", Some("text/plain")));

        let response = post(&app, &url, &pairs(&altered), file, &[]).await;

        let problem: Value = json_with_status(response, 403).await;
        assert_eq!(problem["code"], code, "{name} altered: {problem}");
    }
    assert_nothing_stored(&app, grant.asset_id).await;

    let late = app
        .new_upload(&json!({ "object_key": "late.txt", "expires_in": 1 }))
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let response = app.upload_file(&late.signed_info, b"too late").await;
    assert_problem(response, 403, "url_expired").await;
    assert_nothing_stored(&app, late.asset_id).await;
}

#[tokio::test]
async fn a_browser_on_an_allowed_origin_may_post_the_form() {
    let app = spawn_app_with(Backend::Local, |s| {
        s.cors.allowed_origins = vec![APP_ORIGIN.into()]
    })
    .await;
    let grant = app
        .new_upload(&json!({ "object_key": "from-browser.txt" }))
        .await;
    let (url, fields) = form_of(&grant);

    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", APP_ORIGIN)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    let form = pairs(&fields)
        .into_iter()
        .fold(Form::new(), |form, (name, value)| form.text(name, value))
        .part("file", file_part(b"hi", None));
    let posted = app
        .client
        .post(&url)
        .header("origin", APP_ORIGIN)
        .multipart(form)
        .send()
        .await
        .unwrap();

    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        APP_ORIGIN
    );
    assert!(header(&preflight, "access-control-allow-methods").contains("POST"));
    assert_eq!(posted.status().as_u16(), 204);
    assert_eq!(header(&posted, "access-control-allow-origin"), APP_ORIGIN);
}
