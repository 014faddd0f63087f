//! The `cloud-asset-uploader` binary as an operator starts it: from any directory, with
//! configuration from the environment only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{SignedInfo, UploadGrant, assert_status, new_database, sample_file};

/// A child process killed when the test ends, whatever happened.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory of its own under the system's temporary directory, removed at the end.
struct EmptyDir(PathBuf);

impl EmptyDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("cau-bin-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for EmptyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary with a clean configuration environment: no `UPLOADER_*` of the caller's, JSON
/// logs on stdout, a free port.
fn binary(dir: &Path, database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cloud-asset-uploader"));
    for (name, _) in std::env::vars() {
        if name.starts_with("UPLOADER_") || name == "DATABASE_URL" || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("UPLOADER_SERVER__BIND", "127.0.0.1:0")
        .env("UPLOADER_LOG__FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn spawn(mut command: Command) -> Server {
    let mut child = command.spawn().expect("starting the binary");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    // Drained all along: a full pipe would stall the server's log writer.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Server { child, lines }
}

impl Server {
    /// Reads log lines until one matching `wanted`; returns the lines read, that one last.
    /// Panics after `timeout`.
    fn read_until(&self, wanted: impl Fn(&Value) -> bool, timeout: Duration) -> Vec<Value> {
        let deadline = std::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let found = wanted(&event);
            seen.push(event);
            if found {
                return seen;
            }
        }
        panic!("no such log line within {timeout:?}; saw:\n{seen:#?}");
    }
}

#[tokio::test]
async fn the_binary_serves_from_an_empty_directory_on_built_in_defaults() {
    // Arrange: no config/ anywhere near, only a database URL.
    let dir = EmptyDir::new();
    let database_url = new_database().await;
    let server = spawn(binary(&dir.0, &database_url));

    // Act
    let start = server.read_until(|e| e["message"] == "listening", Duration::from_secs(60));
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
    let requests = server.read_until(
        |e| e["message"] == "request" && e["path"] == "/api/status",
        Duration::from_secs(10),
    );

    // Assert
    assert_status(alive, 200).await;
    assert_status(ready, 200).await;
    assert_status(stored, 200).await;
    assert_status(completed, 200).await;
    assert!(
        dir.0.join("data/objects").is_dir(),
        "the local store is under the working directory"
    );
    let logged = |message: &str| start.iter().find(|e| e["message"] == message).cloned();
    let configuration = logged("configuration loaded").expect("the layers are logged");
    assert_eq!(
        configuration["layers"],
        "built-in defaults, built-in profile development"
    );
    let storage = logged("storage").expect("the storage settings are logged");
    let root = dir.0.join("data/objects");
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
    let dir = EmptyDir::new();
    let missing = dir.0.join("no-such-config");
    let output = binary(&dir.0, "postgres://u:p@127.0.0.1:1/db")
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
    let dir = EmptyDir::new();
    let output = binary(&dir.0, "postgres://u:p@127.0.0.1:1/db")
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
    let dir = EmptyDir::new();
    let database_url = new_database().await;
    let mut command = binary(&dir.0, &database_url);
    command
        .env("UPLOADER_SERVER__SHUTDOWN_DRAIN_SECS", "2")
        .env("UPLOADER_SERVER__SHUTDOWN_TIMEOUT_SECS", "5");
    let mut server = spawn(command);
    let start = server.read_until(|e| e["message"] == "listening", Duration::from_secs(60));
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
    let kill = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    server.read_until(
        |e| e["message"] == "shutting down: not ready, draining",
        Duration::from_secs(5),
    );
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
    server.read_until(
        |e| e["message"] == "shutting down: stopped listening, finishing in-flight requests",
        Duration::from_secs(10),
    );
    let refused = std::net::TcpStream::connect(&address);
    let exited = wait_for_exit(&mut server.child, Duration::from_secs(10));

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

/// The child's exit status, unless it is still running after `timeout`.
fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
