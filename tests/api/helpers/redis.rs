//! A real `redis-server` of the test's own on a free loopback port, that the test can stop
//! and start again on the same port, in plaintext or TLS only (a certificate for `127.0.0.1`
//! from a CA made here). The binary comes from `UPLOADER_TEST_REDIS_SERVER`, else
//! `redis-server` on the `PATH` (Debian's package `redis-server`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) Redis; killed when dropped.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    tls: Option<Tls>,
}

/// The files of a TLS-only server.
struct Tls {
    directory: PathBuf,
    ca_file: PathBuf,
}

impl RedisServer {
    /// Starts Redis on a free port and waits until it answers.
    pub async fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
            tls: None,
        };
        server.restart().await;
        server
    }

    /// Starts a Redis that speaks TLS only and waits until it answers.
    pub async fn start_tls() -> Self {
        let directory = std::env::temp_dir()
            .join("cau-tests")
            .join(format!("redis-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&directory).expect("creating the certificate directory");
        let (ca, issuer) =
            crate::tls::server::certificate_authority("Redis test CA").expect("making a CA");
        let key = rcgen::KeyPair::generate().expect("a key");
        let certificate = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
            .and_then(|params| params.signed_by(&key, &issuer))
            .expect("a server certificate");
        let ca_file = directory.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::write(directory.join("server.pem"), certificate.pem()).unwrap();
        std::fs::write(directory.join("server.key"), key.serialize_pem()).unwrap();
        let mut server = Self {
            port: free_port(),
            child: None,
            tls: Some(Tls { directory, ca_file }),
        };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The PEM of the CA that signed a TLS server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.tls.as_ref().expect("a TLS server").ca_file.clone()
    }

    /// Kills the server (its data is gone, as after a crash of a cache without persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        let binary =
            std::env::var("UPLOADER_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let port = self.port.to_string();
        let mut command = Command::new(&binary);
        command.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        match &self.tls {
            None => command.args(["--port", &port]),
            Some(tls) => command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(tls.directory.join("server.pem"))
                .arg("--tls-key-file")
                .arg(tls.directory.join("server.key")),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {binary} (install Debian's redis-server, or set \
                     UPLOADER_TEST_REDIS_SERVER): {e}"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers().await {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many times `command` (e.g. `evalsha`) ran, from `INFO commandstats`.
    pub async fn calls(&self, command: &str) -> u64 {
        let client = redis::Client::open(self.url()).expect("a plaintext server");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connecting to Redis");
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut connection)
            .await
            .expect("INFO commandstats");
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .and_then(|calls| calls.parse().ok())
            .unwrap_or(0)
    }

    /// True when a PING gets PONG.
    async fn answers(&self) -> bool {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = match &self.tls {
            None => redis::Client::open(self.url()),
            Some(tls) => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(&tls.ca_file).unwrap()),
                },
            ),
        };
        let Ok(client) = client else {
            return false;
        };
        let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
            return false;
        };
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .is_ok_and(|pong| pong == "PONG")
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("finding a free port")
        .port()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(tls) = &self.tls {
            let _ = std::fs::remove_dir_all(&tls.directory);
        }
    }
}
