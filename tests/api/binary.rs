//! The `cloud-asset-uploader` binary as an operator starts it: from any directory, with
//! configuration from the environment only.

#[path = "../shared/server_process.rs"]
mod server_process;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{SignedInfo, UploadGrant, assert_status, new_database, sample_file};
use server_process::{EmptyDir, ServerProcess};

/// The binary with a clean configuration environment (see `server_process::command`) and
/// `database_url`, its stderr kept for the tests that read it.
fn binary(dir: &Path, database_url: &str) -> Command {
    let mut command = server_process::command(dir);
    command
        .env("DATABASE_URL", database_url)
        .stderr(Stdio::piped());
    command
}

#[tokio::test]
async fn the_binary_serves_from_an_empty_directory_on_built_in_defaults() {
    // Arrange: no config/ anywhere near, only a database URL.
    let dir = EmptyDir::new("cau-bin");
    let database_url = new_database().await;
    let mut server = ServerProcess::spawn(&mut binary(dir.path(), &database_url));

    // Act
    let start = server
        .read_until(|e| e["message"] == "listening", Duration::from_secs(60))
        .await;
    let address = format!(
        "http://{}",
        start.last().unwrap()["address"].as_str().unwrap()
    );
    let client = reqwest::Client::new();
    let alive = client
        .get(format!("{address}/healthz"))
        .send()
        .await
        .unwrap();
    let ready = client
        .get(format!("{address}/readyz"))
        .send()
        .await
        .unwrap();
    let bytes = sample_file(10_000);
    let grant: UploadGrant = client
        .post(format!("{address}/api/upload"))
        .json(&json!({ "object_key": "from/anywhere.bin", "content_length": bytes.len() }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let SignedInfo::Put { url, .. } = &grant.signed_info else {
        panic!("the local backend signs a PUT: {:?}", grant.signed_info);
    };
    let stored = client.put(url).body(bytes.clone()).send().await.unwrap();
    let completed = client
        .put(format!("{address}/api/status"))
        .json(&json!({ "asset_id": grant.asset_id, "uploaded_status": "complete" }))
        .send()
        .await
        .unwrap();
    let requests = server
        .read_until(
            |e| e["message"] == "request" && e["path"] == "/api/status",
            Duration::from_secs(10),
        )
        .await;

    // Assert
    assert_status(alive, 200).await;
    assert_status(ready, 200).await;
    assert_status(stored, 200).await;
    assert_status(completed, 200).await;
    assert!(
        dir.path().join("data/objects").is_dir(),
        "the local store is under the working directory"
    );
    let logged = |message: &str| start.iter().find(|e| e["message"] == message).cloned();
    let configuration = logged("configuration loaded").expect("the layers are logged");
    assert_eq!(
        configuration["layers"],
        "built-in defaults, built-in profile development"
    );
    let storage = logged("storage").expect("the storage settings are logged");
    let root = dir.path().join("data/objects");
    assert_eq!(
        storage["root"],
        root.display().to_string(),
        "an absolute root"
    );
    assert!(logged("sweeper").is_some() && logged("authentication").is_some());
    let start_text = format!("{start:?}");
    assert!(!start_text.contains("u:p@") && !start_text.contains(&database_url));
    let paths: Vec<&str> = requests.iter().filter_map(|e| e["path"].as_str()).collect();
    assert!(
        !paths.contains(&"/healthz") && !paths.contains(&"/readyz"),
        "passing probes are not logged at info: {paths:?}"
    );
    assert!(paths.contains(&"/api/upload"), "{paths:?}");
}

#[test]
fn a_named_configuration_directory_that_does_not_exist_stops_the_start() {
    let dir = EmptyDir::new("cau-bin");
    let missing = dir.path().join("no-such-config");
    let output = binary(dir.path(), "postgres://u:p@127.0.0.1:1/db")
        .arg("--config-dir")
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("no-such-config"), "{stderr}");
}

#[test]
fn an_unknown_key_stops_the_start_with_one_line_naming_it() {
    let dir = EmptyDir::new("cau-bin");
    let output = binary(dir.path(), "postgres://u:p@127.0.0.1:1/db")
        .env("UPLOADER_UPLOADS__MAX_SZIE", "10")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("uploads.max_szie"), "{stderr}");
    assert!(stderr.contains("UPLOADER_UPLOADS__MAX_SZIE"), "{stderr}");
    assert!(
        stderr.contains("max_size"),
        "suggests the key meant: {stderr}"
    );
}

#[tokio::test]
async fn on_sigterm_the_server_drains_then_refuses_new_connections_and_exits() {
    // Arrange
    let dir = EmptyDir::new("cau-bin");
    let database_url = new_database().await;
    let mut command = binary(dir.path(), &database_url);
    command
        .env("UPLOADER_SERVER__SHUTDOWN_DRAIN_SECS", "2")
        .env("UPLOADER_SERVER__SHUTDOWN_TIMEOUT_SECS", "5");
    let mut server = ServerProcess::spawn(&mut command);
    let start = server
        .read_until(|e| e["message"] == "listening", Duration::from_secs(60))
        .await;
    let address = start.last().unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .unwrap();
    assert_status(ready, 200).await;

    // Act
    let signalled = std::time::Instant::now();
    server.terminate();
    server
        .read_until(
            |e| e["message"] == "shutting down: not ready, draining",
            Duration::from_secs(5),
        )
        .await;
    let not_ready = client
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .unwrap();
    let still_served = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .unwrap();
    server
        .read_until(
            |e| e["message"] == "shutting down: stopped listening, finishing in-flight requests",
            Duration::from_secs(10),
        )
        .await;
    let refused = std::net::TcpStream::connect(&address);
    let exited = server.wait_for_exit(Duration::from_secs(10)).await;

    // Assert
    let not_ready_status = not_ready.status().as_u16();
    let body: Value = not_ready.json().await.unwrap();
    assert_eq!(not_ready_status, 503, "{body}");
    assert_eq!(body["checks"]["server"], "shutting down");
    assert_eq!(
        still_served.status().as_u16(),
        200,
        "still serving while draining"
    );
    assert_eq!(
        still_served
            .headers()
            .get("connection")
            .and_then(|v| v.to_str().ok()),
        Some("close"),
        "kept-alive clients are told to reconnect elsewhere"
    );
    assert_eq!(
        refused.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "after the drain, new connections are refused, not left hanging"
    );
    let status = exited.expect("the server exits within its timeouts");
    assert!(status.success(), "{status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(2 + 5 + 2));
}
