//! `spawn_app` and the [`TestApp`] every test talks to: one server per test, with its own
//! database (cloned from a migrated template) and its own bucket or storage directory.

mod callers;
mod infrastructure;
pub mod receiver;
pub mod redis;
mod responses;
mod sweeps;
pub mod tokens;

pub use callers::Caller;
pub use responses::{
    AccessGrant, SignedInfo, UploadGrant, assert_problem, assert_problem_in, assert_status,
    assert_success, describe, header, json_with_status,
};
pub use sweeps::{scan_orphans, sweep_expired};

use std::path::PathBuf;

use base64::Engine;
use cloud_asset_uploader::config::{Settings, StorageBackend};
use cloud_asset_uploader::startup::Application;
use reqwest::Response;
use reqwest::multipart::{Form, Part};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Key the local backend signs its URLs with in tests (the minimum is 32 bytes).
const LOCAL_SIGNING_KEY: &str = "test-signing-key-0123456789abcdef0123456789";

/// Which object store the server under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Files under a temporary directory, behind the server's own signed `/storage` routes.
    Local,
    /// A fresh bucket in the shared MinIO container.
    S3,
    /// A fresh bucket in the shared store that verifies part checksums
    /// (`UPLOADER_TEST_S3_CHECKSUM_IMAGE`).
    S3PartChecksums,
}

/// A running server and a client to talk to it (and to storage).
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// `http://<address>` of the separate `/metrics` listener, when `metrics.bind` is set.
    pub metrics_address: Option<String>,
    /// A plain client: no default headers that could interfere with signed requests.
    pub client: reqwest::Client,
    local_root: Option<PathBuf>,
    /// The test's own database, for assertions on what the server stored.
    database_url: String,
    /// What the server was built from, for [`TestApp::restart`].
    settings: Settings,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// Starts a server on `backend` with the test defaults.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts a server on `backend`, letting `configure` adjust the settings before it is built.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let (mut settings, local_root) = test_settings(backend).await;
    configure(&mut settings);
    start(settings, local_root).await
}

/// Starts two servers on one database and one bucket (or storage directory), as two
/// replicas behind a load balancer are; `configure` adjusts the settings both share.
pub async fn spawn_replicas(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, TestApp) {
    let (mut settings, local_root) = test_settings(backend).await;
    configure(&mut settings);
    let second = settings.clone();
    let first = start(settings, local_root).await;
    // The first replica owns (and removes) the storage directory.
    let second = start(second, None).await;
    (first, second)
}

/// The test defaults on `backend`, with a database and bucket (or directory) of their own.
async fn test_settings(backend: Backend) -> (Settings, Option<PathBuf>) {
    init_test_logging();
    let infrastructure = infrastructure::shared();
    let mut settings = Settings {
        profile: "test".into(),
        ..Settings::default()
    };
    settings.server.bind = ([127, 0, 0, 1], 0).into();
    let database_url = infrastructure.create_database().await;
    settings.database.url = Some(SecretString::from(database_url));
    settings.database.migrate_on_start = false;
    // The whole suite runs at once on small machines: opening a connection can take seconds.
    settings.database.connect_timeout_secs = 30;
    let local_root = match backend {
        Backend::Local => {
            let root = std::env::temp_dir()
                .join("cau-tests")
                .join(Uuid::new_v4().simple().to_string());
            settings.storage.backend = StorageBackend::Local;
            settings.storage.local.root = root.clone();
            settings.storage.local.signing_key =
                Some(SecretString::from(LOCAL_SIGNING_KEY.to_owned()));
            Some(root)
        }
        Backend::S3 | Backend::S3PartChecksums => {
            let endpoint = match backend {
                Backend::S3PartChecksums => &infrastructure.s3_checksum_endpoint,
                _ => &infrastructure.s3_endpoint,
            };
            settings.storage.backend = StorageBackend::S3;
            settings.storage.bucket = format!("t-{}", &Uuid::new_v4().simple().to_string()[..20]);
            settings.storage.s3.endpoint = Some(endpoint.clone());
            settings.storage.s3.force_path_style = Some(true);
            settings.storage.s3.create_bucket = true;
            None
        }
    };
    // Rate limits have tests of their own; elsewhere a burst of requests must not trip them.
    settings.rate_limit.enabled = false;
    (settings, local_root)
}

/// Builds and runs the application of `settings` until the returned app is dropped.
async fn start(settings: Settings, local_root: Option<PathBuf>) -> TestApp {
    let database_url = settings
        .database
        .url
        .as_ref()
        .map(|url| secrecy::ExposeSecret::expose_secret(url).to_owned())
        .expect("the test settings name a database");
    let app = Application::build(settings.clone())
        .await
        .expect("building the application");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        if let Err(e) = app
            .run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
        {
            eprintln!("the application stopped with an error: {e:#}");
        }
    });
    TestApp {
        address,
        metrics_address,
        client: reqwest::Client::new(),
        local_root,
        database_url,
        settings,
        _shutdown: shutdown,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(root) = &self.local_root {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

impl TestApp {
    /// Stops this server and starts another with the same settings, database and storage, as
    /// a deploy or a crash-and-restart does.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// [`TestApp::restart`], with `configure` adjusting the settings first (a deploy of a new
    /// configuration).
    pub async fn restart_with(mut self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = self.settings.clone();
        configure(&mut settings);
        let local_root = self.local_root.take();
        drop(self);
        // The old server's dispatcher stops once its shutdown has begun.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        start(settings, local_root).await
    }

    /// The settings this server was built from.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The URL of the test's own database (for the binary's commands).
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// `POST /api/upload` with a JSON body.
    pub async fn request_upload(&self, body: &Value) -> Response {
        self.client
            .post(self.url("/api/upload"))
            .json(body)
            .send()
            .await
            .expect("POST /api/upload")
    }

    /// `POST /api/upload` with any body and content type.
    pub async fn request_upload_raw(
        &self,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.client
            .post(self.url("/api/upload"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST /api/upload")
    }

    /// Requests an upload that must be granted as a new asset (201).
    pub async fn new_upload(&self, body: &Value) -> UploadGrant {
        let response = self.request_upload(body).await;
        json_with_status(response, 201).await
    }

    /// `PUT /api/status`.
    pub async fn mark_status(&self, asset_id: Uuid, status: &str) -> Response {
        self.client
            .put(self.url("/api/status"))
            .json(&json!({ "asset_id": asset_id, "uploaded_status": status }))
            .send()
            .await
            .expect("PUT /api/status")
    }

    /// `GET /api/access`, with the server's default expiry when `expires_in` is `None`.
    pub async fn access(&self, asset_id: Uuid, expires_in: Option<u64>) -> Response {
        let mut query = vec![("asset_id", asset_id.to_string())];
        if let Some(seconds) = expires_in {
            query.push(("expires_in", seconds.to_string()));
        }
        self.client
            .get(self.url("/api/access"))
            .query(&query)
            .send()
            .await
            .expect("GET /api/access")
    }

    /// Sends `bytes` to storage as `signed` says: a `PUT` with exactly its headers, or a
    /// `multipart/form-data` `POST` with its fields first and the file last.
    pub async fn upload_file(&self, signed: &SignedInfo, bytes: &[u8]) -> Response {
        let request = match signed {
            SignedInfo::Put { url, headers } => {
                let mut request = self.client.put(url).body(bytes.to_vec());
                for (name, value) in headers {
                    // The client derives these from the body and the URL; sending them twice
                    // would be a malformed request rather than the one that was signed.
                    if !matches!(
                        name.to_ascii_lowercase().as_str(),
                        "content-length" | "host"
                    ) {
                        request = request.header(name, value);
                    }
                }
                request
            }
            SignedInfo::Post { url, fields } => {
                let form = fields
                    .iter()
                    .fold(Form::new(), |form, (name, value)| {
                        form.text(name.clone(), value.clone())
                    })
                    .part("file", Part::bytes(bytes.to_vec()).file_name("upload.bin"));
                self.client.post(url).multipart(form)
            }
        };
        request.send().await.expect("sending the file to storage")
    }

    /// `GET` a signed download URL.
    pub async fn download(&self, url: &str) -> Response {
        self.client.get(url).send().await.expect("downloading")
    }

    /// The whole happy path: request, upload, complete. Returns the asset id.
    pub async fn store(&self, object_key: &str, bytes: &[u8]) -> Uuid {
        let grant = self.new_upload(&json!({ "object_key": object_key })).await;
        let uploaded = self.upload_file(&grant.signed_info, bytes).await;
        assert_success(uploaded).await;
        let completed = self.mark_status(grant.asset_id, "complete").await;
        assert_status(completed, 200).await;
        grant.asset_id
    }

    /// `GET` any path of the server.
    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}

/// A fresh database holding the migrated schema, for tests that start servers themselves
/// (the binary) or several servers on one database (`settings.database.url`); its URL.
pub async fn new_database() -> String {
    init_test_logging();
    infrastructure::shared().create_database().await
}

/// What the shared Postgres has logged so far, for all tests' databases.
pub fn postgres_log() -> String {
    infrastructure::shared().postgres_log()
}

/// An empty database (no schema), for tests of migrations; its URL.
pub async fn new_empty_database() -> String {
    init_test_logging();
    infrastructure::shared().create_empty_database().await
}

/// After a refused upload, storage must hold nothing: completion finds no object.
pub async fn assert_nothing_stored(app: &TestApp, asset_id: Uuid) {
    let response = app.mark_status(asset_id, "complete").await;
    assert_problem(response, 409, "upload_not_found").await;
}

/// Deterministic bytes that are not all alike, so a shifted or truncated copy shows.
pub fn sample_file(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Base64 of the SHA-256 of `bytes`, as the API expects `checksum_sha256`.
pub fn sha256_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// Server logs on stderr when `TEST_LOG` is set (e.g. `TEST_LOG=debug`).
fn init_test_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}
