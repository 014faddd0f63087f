//! The server binary as a child process, for the two test crates that start it: the API
//! tests (`tests/api/binary.rs`) and the reliability suite (`tests/reliability/support/server.rs`)
//! each include this file with `#[path]`. What lives here: the command with a clean
//! configuration environment, the child with its JSON log lines read as they come, and the
//! working directory it is started in.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Lines of the log a failed wait shows: enough to see what the server was doing, not a
/// load test's thousands of request lines.
const SHOWN_ON_FAILURE: usize = 50;

/// The binary started in `dir` with none of the caller's `UPLOADER_*`, `DATABASE_URL` or
/// `RUST_LOG` (so only what the test sets configures it), JSON logs on a piped stdout and a
/// free port. Where stderr goes is the caller's choice.
pub fn command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cloud-asset-uploader"));
    for (name, _) in std::env::vars() {
        if name.starts_with("UPLOADER_") || name == "DATABASE_URL" || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
        .current_dir(dir)
        .env("UPLOADER_SERVER__BIND", "127.0.0.1:0")
        .env("UPLOADER_LOG__FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    command
}

/// A running server, killed when dropped, whatever the test did.
pub struct ServerProcess {
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl ServerProcess {
    /// Starts `command` (from [`command`]) and reads its stdout from now on.
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command.spawn().expect("starting the server binary");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        // Drained all along: a full pipe would stall the server's log writer.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Reads log lines until one matching `wanted`; returns the lines read, that one last.
    /// Panics after `timeout`, or if the server exits first.
    pub async fn read_until(
        &mut self,
        wanted: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Vec<Value> {
        let mut seen = Vec::new();
        let outcome = tokio::time::timeout(timeout, async {
            while let Some(line) = self.lines.recv().await {
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let found = wanted(&event);
                seen.push(event);
                if found {
                    return true;
                }
            }
            false
        })
        .await;
        let why = match outcome {
            Ok(true) => return seen,
            Ok(false) => "the server exited before the log line awaited".to_owned(),
            Err(_) => format!("no such log line within {timeout:?}"),
        };
        let last = &seen[seen.len().saturating_sub(SHOWN_ON_FAILURE)..];
        panic!("{why}; the last lines seen:\n{last:#?}");
    }

    /// Sends SIGTERM, as Kubernetes and `docker stop` do.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM: {status:?}");
    }

    /// The exit status, unless the server is still running after `timeout`.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("polling the server") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory of its own under the system's temporary directory, removed when dropped:
/// the server's working directory, so nothing near the checkout configures it.
pub struct EmptyDir(PathBuf);

impl EmptyDir {
    /// A new directory named `<prefix>-<uuid>`.
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("creating a temporary directory");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for EmptyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
