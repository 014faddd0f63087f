//! How the server uses Postgres: statements shared over a few connections, and connections
//! that Postgres closed.

use futures::future::join_all;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, assert_status, assert_success, spawn_app_with};

/// Connections the server under test holds to its database now.
async fn server_connections(app: &TestApp) -> i64 {
    app.database()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'cloud-asset-uploader'",
            &[],
        )
        .await
        .expect("counting connections")
        .get(0)
}

/// Uploads `count` files under `prefix` at once, marks them complete and signs their
/// downloads, all at once.
async fn upload_concurrently(app: &TestApp, prefix: &str, count: usize) -> Vec<Uuid> {
    let bodies: Vec<_> = (0..count)
        .map(|i| json!({"object_key": format!("{prefix}/{i}"), "content_length": 3}))
        .collect();
    let grants = join_all(bodies.iter().map(|body| app.new_upload(body))).await;
    let stored = join_all(
        grants
            .iter()
            .map(|grant| app.upload_file(&grant.signed_info, b"abc")),
    )
    .await;
    for response in stored {
        assert_success(response).await;
    }
    let completed = join_all(
        grants
            .iter()
            .map(|grant| app.mark_status(grant.asset_id, "complete")),
    )
    .await;
    for response in completed {
        assert_status(response, 200).await;
    }
    let downloads = join_all(grants.iter().map(|grant| app.access(grant.asset_id, None))).await;
    for response in downloads {
        assert_status(response, 200).await;
    }
    grants.iter().map(|grant| grant.asset_id).collect()
}

#[tokio::test]
async fn concurrent_requests_share_a_few_connections() {
    for shared in [0, 2] {
        // Arrange: far more requests at once than connections.
        let app = spawn_app_with(Backend::S3, |s| {
            s.database.shared_connections = shared;
            s.database.pool_size = 2;
        })
        .await;

        // Act
        let ids = upload_concurrently(&app, "concurrent", 100).await;

        // Assert: every request got its own asset; the server never held more connections
        // than its pool and its shared ones.
        let mut distinct = ids.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 100, "shared_connections = {shared}");
        let connections = server_connections(&app).await;
        assert!(
            connections <= i64::from(shared + 2),
            "shared_connections = {shared}: {connections} connections"
        );
    }
}

#[tokio::test]
async fn connections_closed_by_postgres_are_reopened() {
    // Arrange: the shared connections are open and in use.
    let app = spawn_app_with(Backend::S3, |s| s.database.shared_connections = 2).await;
    upload_concurrently(&app, "before", 10).await;
    assert!(server_connections(&app).await >= 1);

    // Act: Postgres ends every session of the server (a restart or an administrator would).
    app.database()
        .await
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'cloud-asset-uploader'",
            &[],
        )
        .await
        .expect("terminating the server's sessions");
    // The server notices a closed socket when it next reads it; give it that moment.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // Assert: the next requests open new connections instead of failing.
    let ids = upload_concurrently(&app, "after", 10).await;
    assert_eq!(ids.len(), 10);
}
