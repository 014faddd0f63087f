//! Postgres and the S3 stand-in as Docker containers this test can stop and start: each is
//! published on a loopback port chosen here, which stays the same across restarts.

use std::process::Command;
use std::time::{Duration, Instant};

use super::wait_until;

/// Image used for Postgres unless `UPLOADER_TEST_POSTGRES_IMAGE` names another.
const DEFAULT_POSTGRES_IMAGE: &str = "postgres:17-alpine";
/// Image used for S3 unless `UPLOADER_TEST_MINIO_IMAGE` names another.
const DEFAULT_MINIO_IMAGE: &str = "minio/minio:RELEASE.2025-02-28T09-55-16Z";

/// A running container, removed when dropped.
pub struct Container {
    name: String,
    /// The loopback port its service is published on.
    pub port: u16,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Postgres,
    S3,
}

impl Container {
    /// Postgres 15+ with the password `postgres`, ready for connections.
    pub async fn postgres() -> Self {
        let image = image("UPLOADER_TEST_POSTGRES_IMAGE", DEFAULT_POSTGRES_IMAGE);
        let container = Self::run(Kind::Postgres, |port| {
            vec![
                "-e".into(),
                "POSTGRES_PASSWORD=postgres".into(),
                "-p".into(),
                format!("127.0.0.1:{port}:5432"),
                image.clone(),
                "-c".into(),
                "fsync=off".into(),
            ]
        });
        container.wait_ready().await;
        container
    }

    /// The S3 API (MinIO or its stand-in) with MinIO's default credentials, ready.
    pub async fn s3() -> Self {
        let image = image("UPLOADER_TEST_MINIO_IMAGE", DEFAULT_MINIO_IMAGE);
        let container = Self::run(Kind::S3, |port| {
            vec![
                "-p".into(),
                format!("127.0.0.1:{port}:9000"),
                image.clone(),
                "server".into(),
                "/data".into(),
            ]
        });
        container.wait_ready().await;
        container
    }

    fn run(kind: Kind, args: impl Fn(u16) -> Vec<String>) -> Self {
        let port = free_port();
        let name = format!("cau-reliability-{}", uuid::Uuid::new_v4().simple());
        docker(
            &[
                vec![
                    "run".into(),
                    "-d".into(),
                    "--name".into(),
                    name.clone(),
                    "--label".into(),
                    "cloud-asset-uploader-tests=1".into(),
                ],
                args(port),
            ]
            .concat(),
        );
        Self { name, port, kind }
    }

    /// `postgres://…/postgres` for Postgres, `http://127.0.0.1:<port>` for S3.
    pub fn url(&self) -> String {
        match self.kind {
            Kind::Postgres => format!(
                "postgres://postgres:postgres@127.0.0.1:{}/postgres",
                self.port
            ),
            Kind::S3 => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// Stops the container (its data stays); nothing listens on its port meanwhile.
    pub fn stop(&self) {
        docker(&["stop", "-t", "5", &self.name]);
    }

    /// Starts it again and returns the moment its service answered.
    pub async fn start(&self) -> Instant {
        docker(&["start", &self.name]);
        self.wait_ready().await
    }

    /// Stops and starts it, as `docker restart` does; returns when its service answered.
    pub async fn restart(&self) -> Instant {
        docker(&["restart", "-t", "5", &self.name]);
        self.wait_ready().await
    }

    async fn wait_ready(&self) -> Instant {
        let url = self.url();
        match self.kind {
            Kind::Postgres => {
                wait_until("Postgres answers", Duration::from_secs(60), || {
                    postgres_answers(&url)
                })
                .await
            }
            Kind::S3 => {
                let client = reqwest::Client::new();
                let health = format!("{url}/minio/health/ready");
                wait_until("S3 answers", Duration::from_secs(60), || {
                    let request = client.get(&health).timeout(Duration::from_secs(1)).send();
                    async move { request.await.is_ok_and(|r| r.status().is_success()) }
                })
                .await
            }
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .output();
    }
}

async fn postgres_answers(url: &str) -> bool {
    let Ok(Ok((client, connection))) = tokio::time::timeout(
        Duration::from_secs(1),
        tokio_postgres::connect(url, tokio_postgres::NoTls),
    )
    .await
    else {
        return false;
    };
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.is_ok()
}

fn image(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    listener.local_addr().unwrap().port()
}

fn docker<S: AsRef<std::ffi::OsStr>>(args: &[S]) {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("these tests need the docker command and a running engine");
    assert!(
        output.status.success(),
        "docker {:?}: {}",
        args.iter()
            .map(|a| a.as_ref().to_owned())
            .collect::<Vec<_>>(),
        String::from_utf8_lossy(&output.stderr)
    );
}
