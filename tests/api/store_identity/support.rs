//! What the store identity tests share: a store of their own, servers started on a given
//! database and store, and the two outcomes (ready, refused).

use std::path::PathBuf;

use cloud_asset_uploader::config::Settings;
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, assert_problem, spawn_app_with};

pub const MARKER: &str = "uploads/.store-id";

/// A store of the test's own, outliving the servers started on it: a local root (removed at
/// the end) or an S3 bucket.
pub struct Store {
    pub backend: Backend,
    pub root: PathBuf,
    pub bucket: String,
}

impl Store {
    pub fn new(backend: Backend) -> Self {
        let id = Uuid::new_v4().simple().to_string();
        Self {
            backend,
            root: std::env::temp_dir().join("cau-tests").join(&id),
            bucket: match backend {
                Backend::Local => "assets".into(),
                Backend::S3 | Backend::S3PartChecksums => format!("t-{}", &id[..20]),
            },
        }
    }

    pub fn apply(&self, settings: &mut Settings) {
        settings.storage.bucket = self.bucket.clone();
        settings.storage.local.root = self.root.clone();
        settings.lifecycle.sweeper_enabled = false;
    }

    /// The marker's contents, read around the server: from disk, or with a client of our own.
    pub async fn marker(&self, settings: &Settings, key: &str) -> Option<Vec<u8>> {
        match self.backend {
            Backend::Local => std::fs::read(self.root.join(&self.bucket).join(key)).ok(),
            Backend::S3 | Backend::S3PartChecksums => {
                let endpoint = settings.storage.s3.endpoint.clone().unwrap();
                let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .endpoint_url(endpoint)
                    .region(aws_config::Region::new("us-east-1"))
                    .load()
                    .await;
                let config = aws_sdk_s3::config::Builder::from(&shared)
                    .force_path_style(true)
                    .build();
                let client = aws_sdk_s3::Client::from_conf(config);
                let object = client.get_object().bucket(&self.bucket).key(key);
                let output = object.send().await.ok()?;
                Some(output.body.collect().await.unwrap().to_vec())
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A server on `database` and `store`; returns it with its settings.
pub async fn start(
    store: &Store,
    database: &str,
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, Settings) {
    let mut captured = None;
    let app = spawn_app_with(store.backend, |settings| {
        settings.database.url = Some(SecretString::from(database.to_owned()));
        store.apply(settings);
        configure(settings);
        captured = Some(settings.clone());
    })
    .await;
    (app, captured.expect("the settings were configured"))
}

/// A connection to `database` (a server's own `database()` is the one `spawn_app` made).
pub async fn connect(database: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(database, tokio_postgres::NoTls)
        .await
        .expect("connecting to the test database");
    tokio::spawn(connection);
    client
}

/// The store id `database` records.
pub async fn recorded(database: &str) -> Option<Uuid> {
    let row = connect(database)
        .await
        .query_opt("SELECT store_id FROM store_identity", &[])
        .await
        .expect("reading store_identity");
    row.map(|row| row.get(0))
}

pub fn id_of(marker: &[u8]) -> Uuid {
    let text = String::from_utf8_lossy(marker);
    Uuid::parse_str(text.lines().next().unwrap_or_default().trim())
        .expect("the marker holds a UUID")
}

pub async fn assert_ready(app: &TestApp, why: &str) {
    let response = app.get("/readyz").await;
    assert_eq!(
        response.status().as_u16(),
        200,
        "{why}: {}",
        response.text().await.unwrap()
    );
}

/// The API refuses with `storage_mismatch` (already before any `/readyz`: the start checked),
/// and `/readyz` names storage as the wrong store.
pub async fn assert_refused(app: &TestApp, why: &str) {
    assert_upload_refused(app).await;
    assert_not_ready(app, why).await;
}

pub async fn assert_upload_refused(app: &TestApp) {
    let response = app.request_upload(&json!({ "object_key": "a.txt" })).await;
    assert_problem(response, 503, "storage_mismatch").await;
}

pub async fn assert_not_ready(app: &TestApp, why: &str) {
    let problem = assert_problem(app.get("/readyz").await, 503, "not_ready").await;
    assert_eq!(
        problem["checks"]["storage"], "wrong store",
        "{why}: {problem}"
    );
    assert_eq!(problem["checks"]["database"], "ok", "{why}: {problem}");
}
