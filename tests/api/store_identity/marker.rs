//! The marker itself: never swept, never reachable through a URL, watched while serving; and
//! the `sweep` command, which refuses a store the database does not record.

use std::path::PathBuf;

use cloud_asset_uploader::db::{AssetRepository, connect_lazy};
use cloud_asset_uploader::lifecycle::Sweeper;
use cloud_asset_uploader::storage::{self, ListedObject};
use futures::StreamExt;
use secrecy::SecretString;
use serde_json::json;

use super::support::{MARKER, Store, assert_not_ready, assert_ready, assert_upload_refused, start};
use crate::helpers::{
    Backend, assert_problem, assert_status, new_database, sample_file, scan_orphans,
};

#[tokio::test]
async fn the_orphan_sweep_never_lists_or_deletes_the_marker() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange: everything older than now counts as old enough to sweep.
        let (store, database) = (Store::new(backend), new_database().await);
        let (app, settings) = start(&store, &database, |s| {
            s.lifecycle.pending_grace = std::time::Duration::ZERO;
        })
        .await;
        app.store("kept.bin", &sample_file(8)).await;
        let public_url = app.address.parse().unwrap();
        let storage = storage::from_settings(&settings, &public_url)
            .await
            .unwrap();
        let pool = connect_lazy(&settings.database).unwrap();
        let sweeper = Sweeper::new(AssetRepository::new(pool), storage.clone(), &settings);

        // Act
        let listed: Vec<ListedObject> = storage
            .list("uploads")
            .map(|page| page.expect("listing"))
            .concat()
            .await;
        let report = scan_orphans(&sweeper, false).await;

        // Assert
        assert!(
            listed.iter().all(|o| !o.storage_key.ends_with(".store-id")),
            "{listed:?}"
        );
        assert_eq!(listed.len(), 1, "{backend:?}: only the asset");
        assert!(
            report.objects.is_empty(),
            "{backend:?}: {:?}",
            report.objects
        );
        assert!(
            store.marker(&settings, MARKER).await.is_some(),
            "{backend:?}"
        );
        assert_ready(&app, "after the sweep").await;
    }
}

#[tokio::test]
async fn no_signed_url_reads_or_overwrites_the_local_marker() {
    use cloud_asset_uploader::storage::local::{SignedMethod, SignedRequest, UrlSigner};
    // Arrange: the test knows the signing key, so it can sign what the server never would.
    let key = "store-identity-test-key-0123456789abcdef";
    let (store, database) = (Store::new(Backend::Local), new_database().await);
    let (app, settings) = start(&store, &database, |s| {
        s.storage.local.signing_key = Some(SecretString::from(key.to_owned()));
    })
    .await;
    let before = store.marker(&settings, MARKER).await.unwrap();
    let signer = UrlSigner::new(key.as_bytes());
    let signed = |method| SignedRequest {
        method,
        bucket: "assets".into(),
        key: MARKER.into(),
        expires: chrono::Utc::now().timestamp() + 60,
        max_size: Some(100),
        length: None,
        content_type: None,
        checksum_sha256: None,
        part: None,
    };
    let url = |method| {
        format!(
            "{}/storage/assets/{MARKER}?{}",
            app.address,
            signer.sign(&signed(method))
        )
    };

    // Act
    let read = app.client.get(url(SignedMethod::Get)).send().await.unwrap();
    let written = app
        .client
        .put(url(SignedMethod::Put))
        .body("x")
        .send()
        .await
        .unwrap();

    // Assert
    assert_problem(read, 403, "signature_mismatch").await;
    assert_problem(written, 403, "signature_mismatch").await;
    assert_eq!(store.marker(&settings, MARKER).await.unwrap(), before);
    assert_ready(&app, "the marker is untouched").await;
}

#[tokio::test]
async fn a_store_that_vanishes_under_a_running_server_shows_in_readyz() {
    // Arrange
    let (store, database) = (Store::new(Backend::Local), new_database().await);
    let (app, _) = start(&store, &database, |_| {}).await;
    assert_ready(&app, "before").await;
    let marker = store.root.join("assets").join(MARKER);
    let kept = std::fs::read(&marker).unwrap();

    // Act
    std::fs::remove_file(&marker).unwrap();

    // Assert: the next /readyz notices, and from then on the API refuses.
    assert_not_ready(&app, "the marker vanished").await;
    assert_upload_refused(&app).await;
    std::fs::write(&marker, kept).unwrap();
    assert_ready(&app, "the marker is back").await;
    let response = app.request_upload(&json!({ "object_key": "a.txt" })).await;
    assert_status(response, 201).await;
}

#[tokio::test]
async fn the_sweep_command_refuses_a_store_the_database_does_not_record() {
    // Arrange
    let (store, database) = (Store::new(Backend::Local), new_database().await);
    let (_app, settings) = start(&store, &database, |_| {}).await;
    let empty = Store::new(Backend::Local);
    let sweep = |root: PathBuf| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_cloud-asset-uploader"))
            .args([
                "--config-dir",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
            ])
            .args(["sweep", "--orphans"])
            .env("UPLOADER_PROFILE", "development")
            .env("UPLOADER_DATABASE__URL", &database)
            .env("UPLOADER_STORAGE__LOCAL__ROOT", root)
            .env(
                "UPLOADER_STORAGE__LOCAL__SIGNING_KEY",
                "sweep-test-key-0123456789abcdef0123",
            )
            .env("UPLOADER_LOG__FORMAT", "text")
            .output()
    };

    // Act
    let refused = sweep(empty.root.clone()).await.expect("running sweep");
    let allowed = sweep(store.root.clone()).await.expect("running sweep");

    // Assert
    let output = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(!refused.status.success(), "{}", output(&refused));
    assert!(
        output(&refused).contains("refusing to sweep"),
        "{}",
        output(&refused)
    );
    assert!(
        empty.marker(&settings, MARKER).await.is_none(),
        "sweep marks no store"
    );
    assert!(allowed.status.success(), "{}", output(&allowed));
}
