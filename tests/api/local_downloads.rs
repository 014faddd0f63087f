//! Downloads from the local backend's signed `GET` URLs behave as S3's do for browsers and
//! video players: whole objects byte for byte, one byte range at a time, conditional
//! requests answered `304`, `HEAD` with the headers and no body; the signature is checked
//! before any of it.

use reqwest::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, LAST_MODIFIED, RANGE,
};
use serde_json::json;

use crate::helpers::{
    AccessGrant, Backend, TestApp, assert_problem, assert_status, assert_success, header,
    json_with_status, sample_file, spawn_app,
};
use crate::local_storage::tamper;

/// Larger than one read chunk of the server (4 MiB), and not a multiple of it.
const SIZE: usize = 5 * 1024 * 1024 + 3;

/// A complete asset holding `file` (type `video/mp4`); its signed download URL.
async fn stored_video(app: &TestApp, file: &[u8]) -> String {
    let grant = app
        .new_upload(&json!({
            "object_key": "clip.mp4",
            "content_type": "video/mp4",
            "content_length": file.len(),
        }))
        .await;
    assert_success(app.upload_file(&grant.signed_info, file).await).await;
    assert_status(app.mark_status(grant.asset_id, "complete").await, 200).await;
    let access: AccessGrant = json_with_status(app.access(grant.asset_id, None).await, 200).await;
    access.url
}

async fn get_with(
    app: &TestApp,
    url: &str,
    name: impl AsRef<str>,
    value: &str,
) -> reqwest::Response {
    app.client
        .get(url)
        .header(name.as_ref(), value)
        .send()
        .await
        .expect("GET")
}

#[tokio::test]
async fn a_full_download_is_the_upload_byte_for_byte_with_its_validators() {
    let app = spawn_app(Backend::Local).await;
    let file = sample_file(SIZE);
    let url = stored_video(&app, &file).await;

    let downloaded = app.download(&url).await;

    assert_eq!(downloaded.status().as_u16(), 200);
    assert_eq!(header(&downloaded, CONTENT_TYPE.as_str()), "video/mp4");
    assert_eq!(
        header(&downloaded, CONTENT_LENGTH.as_str()),
        SIZE.to_string()
    );
    assert_eq!(header(&downloaded, ACCEPT_RANGES.as_str()), "bytes");
    assert!(!header(&downloaded, ETAG.as_str()).is_empty());
    assert!(!header(&downloaded, LAST_MODIFIED.as_str()).is_empty());
    assert!(downloaded.headers().get("content-disposition").is_none());
    assert!(
        downloaded.bytes().await.unwrap() == file,
        "the bytes differ"
    );
}

#[tokio::test]
async fn a_byte_range_is_answered_with_206_and_exactly_those_bytes() {
    let app = spawn_app(Backend::Local).await;
    let file = sample_file(SIZE);
    let url = stored_video(&app, &file).await;
    let last = SIZE - 1;
    // (Range, first byte, last byte, why)
    let cases = [
        ("bytes=0-99".to_owned(), 0, 99, "the first bytes"),
        ("bytes=-100".to_owned(), SIZE - 100, last, "a suffix range"),
        (
            format!("bytes={}-", SIZE - 10),
            SIZE - 10,
            last,
            "an open-ended range",
        ),
        (
            format!("bytes=4194300-{}", SIZE + 50),
            4_194_300,
            last,
            "a range past the end, clamped",
        ),
    ];
    for (range, first, end, why) in cases {
        let partial = get_with(&app, &url, RANGE, &range).await;

        assert_eq!(partial.status().as_u16(), 206, "{why}");
        assert_eq!(
            header(&partial, CONTENT_RANGE.as_str()),
            format!("bytes {first}-{end}/{SIZE}"),
            "{why}"
        );
        assert_eq!(
            header(&partial, CONTENT_TYPE.as_str()),
            "video/mp4",
            "{why}"
        );
        assert!(
            partial.bytes().await.unwrap() == file[first..=end],
            "{why}: other bytes"
        );
    }
}

#[tokio::test]
async fn a_range_beyond_the_object_is_refused_with_416_as_a_problem() {
    let app = spawn_app(Backend::Local).await;
    let url = stored_video(&app, &sample_file(1000)).await;

    let refused = get_with(&app, &url, RANGE, "bytes=1000-").await;

    assert_eq!(header(&refused, CONTENT_RANGE.as_str()), "bytes */1000");
    assert_problem(refused, 416, "range_not_satisfiable").await;
}

#[tokio::test]
async fn a_current_etag_or_modification_date_is_answered_304_without_a_body() {
    let app = spawn_app(Backend::Local).await;
    let url = stored_video(&app, &sample_file(2 * 1024 * 1024)).await;
    let first = app.download(&url).await;
    let etag = header(&first, ETAG.as_str());
    let modified = header(&first, LAST_MODIFIED.as_str());
    drop(first);

    let by_etag = get_with(&app, &url, IF_NONE_MATCH, &etag).await;
    let by_date = get_with(&app, &url, IF_MODIFIED_SINCE, &modified).await;
    let other_etag = get_with(&app, &url, IF_NONE_MATCH, "\"something-else\"").await;
    let older = get_with(
        &app,
        &url,
        IF_MODIFIED_SINCE,
        "Thu, 01 Jan 2015 00:00:00 GMT",
    )
    .await;

    for (response, why) in [(by_etag, "If-None-Match"), (by_date, "If-Modified-Since")] {
        assert_eq!(response.status().as_u16(), 304, "{why}");
        assert_eq!(header(&response, ETAG.as_str()), etag, "{why}");
        assert!(response.bytes().await.unwrap().is_empty(), "{why}: no body");
    }
    assert_eq!(other_etag.status().as_u16(), 200, "another ETag");
    assert_eq!(older.status().as_u16(), 200, "an older copy");
}

#[tokio::test]
async fn head_answers_the_headers_of_a_get_and_no_body() {
    let app = spawn_app(Backend::Local).await;
    let file = sample_file(SIZE);
    let url = stored_video(&app, &file).await;
    let etag = header(&app.download(&url).await, ETAG.as_str());

    let head = app.client.head(&url).send().await.unwrap();

    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(header(&head, CONTENT_LENGTH.as_str()), SIZE.to_string());
    assert_eq!(header(&head, CONTENT_TYPE.as_str()), "video/mp4");
    assert_eq!(header(&head, ETAG.as_str()), etag);
    assert_eq!(header(&head, ACCEPT_RANGES.as_str()), "bytes");
    assert!(head.bytes().await.unwrap().is_empty(), "no body");
}

#[tokio::test]
async fn the_signature_is_checked_before_ranges_heads_and_conditions() {
    let app = spawn_app(Backend::Local).await;
    let url = stored_video(&app, &sample_file(1000)).await;
    let forged = tamper(&url, "signature", Some(&"0".repeat(64)));

    let ranged = get_with(&app, &forged, RANGE, "bytes=0-9").await;
    let conditional = get_with(&app, &forged, IF_NONE_MATCH, "*").await;
    let head = app.client.head(&forged).send().await.unwrap();

    assert_problem(ranged, 403, "signature_mismatch").await;
    assert_problem(conditional, 403, "signature_mismatch").await;
    assert_eq!(head.status().as_u16(), 403);
}
