//! The server binary as a child process against the suite's containers, configured by
//! environment only, reading its JSON log lines as they come (the process itself is
//! `server_process`, shared with the API tests).

#[path = "../../shared/server_process.rs"]
mod server_process;

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::containers::Container;
use server_process::{EmptyDir, ServerProcess};

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
    // Declared before `_dir`: the process is stopped before its working directory goes.
    process: ServerProcess,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    _dir: EmptyDir,
}

impl Server {
    /// Starts the binary against `postgres` and `s3` (bucket `reliability`, created on
    /// start), without authentication or rate limits, and waits until it listens.
    pub async fn start(postgres: &Container, s3: &Container, options: &Options) -> Self {
        let dir = EmptyDir::new("cau-rel");
        let mut command = server_process::command(dir.path());
        command
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
            .stderr(Stdio::inherit());
        let mut server = Self {
            process: ServerProcess::spawn(&mut command),
            base: String::new(),
            _dir: dir,
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
        let mut lines = self
            .process
            .read_until(|event| event["message"] == message, timeout)
            .await;
        lines
            .pop()
            .expect("read_until returns the line it waited for")
    }

    /// Sends SIGTERM, as Kubernetes and `docker stop` do.
    pub fn terminate(&self) {
        self.process.terminate();
    }

    /// The exit status, unless the server is still running after `timeout`.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.process.wait_for_exit(timeout).await
    }
}
