//! The local storage routes' floor under an upload's speed (`storage.local.min_upload_rate`):
//! a slow but steady upload is stored, a stalled one is cut off with 408 and stores nothing.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Backend, SignedInfo, TestApp, assert_problem, spawn_app_with};

/// At least 100 bytes in every second.
async fn app() -> TestApp {
    spawn_app_with(Backend::Local, |s| {
        s.storage.local.min_upload_rate = 100;
        s.storage.local.upload_rate_window_secs = 1;
    })
    .await
}

fn put_url(signed: &SignedInfo) -> &str {
    match signed {
        SignedInfo::Put { url, .. } => url,
        other => panic!("expected a PUT, got {other:?}"),
    }
}

#[tokio::test]
async fn an_upload_slow_but_above_the_floor_is_stored() {
    // Arrange: 600 bytes in 150-byte pieces, one every 0.5 s (300 bytes/s).
    let app = app().await;
    let grant = app
        .new_upload(&json!({ "object_key": "slow.bin", "content_length": 600 }))
        .await;
    let pieces = futures::stream::iter(0..4).then(|_| async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok::<_, std::io::Error>(vec![7u8; 150])
    });

    // Act
    let stored = app
        .client
        .put(put_url(&grant.signed_info))
        .header("content-length", "600")
        .body(reqwest::Body::wrap_stream(pieces))
        .send()
        .await
        .unwrap();

    // Assert
    assert!(stored.status().is_success(), "{}", stored.status());
    let completed = app.mark_status(grant.asset_id, "complete").await;
    assert_eq!(completed.status().as_u16(), 200);
}

#[tokio::test]
async fn a_stalled_upload_is_cut_off_with_408_and_stores_nothing() {
    // Arrange
    let app = app().await;
    let grant = app
        .new_upload(&json!({ "object_key": "stalled.bin", "content_length": 1000 }))
        .await;
    let url = url::Url::parse(put_url(&grant.signed_info)).unwrap();
    let target = &url[url::Position::BeforePath..];
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();

    // Act: 200 bytes at once (enough for the first second), then nothing.
    let started = Instant::now();
    let head = format!("PUT {target} HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[7u8; 200]).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    let _ = read.await.expect("the server answers a stalled upload");
    let waited = started.elapsed();

    // Assert
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"upload_too_slow\""), "{answer}");
    assert!(
        waited < Duration::from_secs(4),
        "cut off after the second window, not later: {waited:?}"
    );
    let completed = app.mark_status(grant.asset_id, "complete").await;
    assert_problem(completed, 409, "upload_not_found").await;
}
