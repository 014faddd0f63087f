//! The server binary as a child process, configured by environment only, reading its JSON
//! log lines as they come.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::containers::Container;

/// How a test wants the server set up, beyond its dependencies.
pub struct Options {
    pub shutdown_drain_secs: u64,
    pub shutdown_timeout_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            shutdown_drain_secs: 0,
            shutdown_timeout_secs: 10,
        }
    }
}

/// A running server, killed when dropped.
pub struct Server {
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The working directory the binary was started in, removed when dropped.
    dir: std::path::PathBuf,
}

impl Server {
    /// Starts the binary against `postgres` and `s3` (bucket `reliability`, created on
    /// start), without authentication or rate limits, and waits until it listens.
    pub async fn start(postgres: &Container, s3: &Container, options: &Options) -> Self {
        let dir = std::env::temp_dir().join(format!("cau-rel-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_cloud-asset-uploader"));
        for (name, _) in std::env::vars() {
            if name.starts_with("UPLOADER_") || name == "DATABASE_URL" || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        command
            .current_dir(&dir)
            .env("UPLOADER_SERVER__BIND", "127.0.0.1:0")
            .env("UPLOADER_LOG__FORMAT", "json")
            .env("UPLOADER_AUTH__MODE", "none")
            .env("UPLOADER_RATE_LIMIT__ENABLED", "false")
            .env("UPLOADER_DATABASE__URL", postgres.url())
            // An outage is answered 503 after a second, not after the default five.
            .env("UPLOADER_DATABASE__CONNECT_TIMEOUT_SECS", "1")
            .env("UPLOADER_STORAGE__BACKEND", "s3")
            .env("UPLOADER_STORAGE__BUCKET", "reliability")
            .env("UPLOADER_STORAGE__S3__ENDPOINT", s3.url())
            .env("UPLOADER_STORAGE__S3__FORCE_PATH_STYLE", "true")
            .env("UPLOADER_STORAGE__S3__CREATE_BUCKET", "true")
            .env(
                "UPLOADER_SERVER__SHUTDOWN_DRAIN_SECS",
                options.shutdown_drain_secs.to_string(),
            )
            .env(
                "UPLOADER_SERVER__SHUTDOWN_TIMEOUT_SECS",
                options.shutdown_timeout_secs.to_string(),
            )
            .env("AWS_ACCESS_KEY_ID", "minioadmin")
            .env("AWS_SECRET_ACCESS_KEY", "minioadmin")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("starting the server binary");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        // Drained all along: a full pipe would stall the server's log writer.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            lines,
            base: String::new(),
            dir,
        };
        let listening = server
            .wait_for_log("listening", Duration::from_secs(60))
            .await;
        server.base = format!("http://{}", listening["address"].as_str().unwrap());
        server
    }

    /// Waits for the log line whose `message` is `message`, and returns it. Panics after
    /// `timeout`, or if the server exits first.
    pub async fn wait_for_log(&mut self, message: &str, timeout: Duration) -> Value {
        let wanted = async {
            while let Some(line) = self.lines.recv().await {
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && event["message"] == message
                {
                    return event;
                }
            }
            panic!("the server exited before logging {message:?}")
        };
        tokio::time::timeout(timeout, wanted)
            .await
            .unwrap_or_else(|_| panic!("the server did not log {message:?} within {timeout:?}"))
    }

    /// Sends SIGTERM, as Kubernetes and `docker stop` do.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The exit status, unless the server is still running after `timeout`.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
