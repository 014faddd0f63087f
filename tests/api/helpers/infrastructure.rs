//! The containers every test of this binary shares: one Postgres and one S3-compatible store
//! (MinIO), started lazily on first use and removed when the process exits; and a second S3
//! store for the tests of part checksums, which need a store that verifies them (MinIO does;
//! the offline stand-in of the first does not, so CI names `tests/s3-stand-in`'s image).
//!
//! `#[tokio::test]` gives each test its own runtime, which dies with the test; containers
//! started on it would lose their Docker client mid-run. So they start on a dedicated thread
//! with its own runtime, which keeps them (and itself) alive for the whole process.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use cloud_asset_uploader::config::DatabaseSettings;
use secrecy::SecretString;
use testcontainers_modules::minio::MinIO;
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::core::IntoContainerPort;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerRequest, Image, ImageExt};
use tokio_postgres::NoTls;

/// Image used for Postgres unless `UPLOADER_TEST_POSTGRES_IMAGE` names another (`name:tag`).
const DEFAULT_POSTGRES_IMAGE: &str = "postgres:17-alpine";
/// Image used for S3 unless `UPLOADER_TEST_MINIO_IMAGE` names another (`name:tag`).
const DEFAULT_MINIO_IMAGE: &str = "minio/minio:RELEASE.2025-02-28T09-55-16Z";
/// Variable naming the image of the store that verifies part checksums; unset, the one
/// `UPLOADER_TEST_MINIO_IMAGE` names (or [`DEFAULT_MINIO_IMAGE`]).
const CHECKSUM_IMAGE_VARIABLE: &str = "UPLOADER_TEST_S3_CHECKSUM_IMAGE";
/// Label on every container this binary starts, so strays are easy to find by hand.
const LABEL: (&str, &str) = ("cloud-asset-uploader-tests", "1");
/// Database migrated once and cloned (`CREATE DATABASE … TEMPLATE`) for every test.
const TEMPLATE_DATABASE: &str = "cau_template";
/// MinIO's default root credentials, which the module keeps.
const MINIO_CREDENTIALS: (&str, &str) = ("minioadmin", "minioadmin");

/// Where the shared services answer.
pub struct Infrastructure {
    /// `postgres://…/postgres`, the maintenance database used to create per-test databases.
    admin_url: String,
    /// `postgres://…/` without a database name.
    server_url: String,
    /// `http://127.0.0.1:<port>` of the S3 API.
    pub s3_endpoint: String,
    /// `http://127.0.0.1:<port>` of the S3 API that verifies part checksums.
    pub s3_checksum_endpoint: String,
    /// The Postgres container, for its log.
    postgres_id: String,
}

/// Ids of the containers started by this process, removed by [`remove_containers`] at exit.
static CONTAINER_IDS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INFRASTRUCTURE: OnceLock<Result<Infrastructure, String>> = OnceLock::new();

/// The shared services, started on first call. Panics (failing the test) when they cannot
/// start: these tests must never pass without having talked to real services.
pub fn shared() -> &'static Infrastructure {
    let started = INFRASTRUCTURE.get_or_init(|| {
        set_aws_environment();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("test-containers".into())
            .spawn(move || run_containers(tx))
            .expect("spawning the container thread");
        rx.recv()
            .unwrap_or_else(|_| Err("the container thread died while starting".into()))
    });
    match started {
        Ok(infrastructure) => infrastructure,
        Err(error) => panic!(
            "integration tests need a running Docker engine and the images {} and {} \
             (override with UPLOADER_TEST_POSTGRES_IMAGE / UPLOADER_TEST_MINIO_IMAGE): {error}",
            image_from_env("UPLOADER_TEST_POSTGRES_IMAGE", DEFAULT_POSTGRES_IMAGE).join(":"),
            image_from_env("UPLOADER_TEST_MINIO_IMAGE", DEFAULT_MINIO_IMAGE).join(":"),
        ),
    }
}

impl Infrastructure {
    /// What Postgres has logged so far (all databases).
    pub fn postgres_log(&self) -> String {
        let output = std::process::Command::new("docker")
            .args(["logs", &self.postgres_id])
            .output()
            .expect("reading the Postgres container's log");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    /// Creates an empty database and returns its URL.
    pub async fn create_empty_database(&self) -> String {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&self.admin_url)
            .await
            .expect("connecting to Postgres");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        format!("{}{name}", self.server_url)
    }

    /// Creates a fresh database holding the migrated schema and returns its URL.
    pub async fn create_database(&self) -> String {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&self.admin_url)
            .await
            .expect("connecting to Postgres");
        let statement = format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE_DATABASE}");
        let mut attempt = 0;
        loop {
            match admin.batch_execute(&statement).await {
                Ok(()) => break,
                // Postgres refuses to copy a template while anything is connected to it.
                Err(e)
                    if attempt < 10 && e.to_string().contains("being accessed by other users") =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("creating test database {name}: {e}"),
            }
        }
        format!("{}{name}", self.server_url)
    }
}

/// Runs on the container thread: starts everything, reports, then keeps it all alive.
fn run_containers(report: std::sync::mpsc::Sender<Result<Infrastructure, String>>) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = report.send(Err(format!("building the container runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        match start().await {
            Ok((infrastructure, handles)) => {
                let _ = report.send(Ok(infrastructure));
                // The handles must never drop: their Drop would remove the containers while
                // tests still use them. The process-exit hook removes them instead.
                let _keep_alive = handles;
                std::future::pending::<()>().await;
            }
            Err(e) => {
                let _ = report.send(Err(format!("{e:#}")));
            }
        }
    });
}

type Handles = (
    testcontainers_modules::testcontainers::ContainerAsync<Postgres>,
    testcontainers_modules::testcontainers::ContainerAsync<MinIO>,
    testcontainers_modules::testcontainers::ContainerAsync<MinIO>,
);

async fn start() -> anyhow::Result<(Infrastructure, Handles)> {
    let postgres = labelled(
        Postgres::default(),
        "UPLOADER_TEST_POSTGRES_IMAGE",
        DEFAULT_POSTGRES_IMAGE,
    )
    // fsync=off is the module's default; tests also open many pools at once.
    .with_cmd(["-c", "fsync=off", "-c", "max_connections=500"])
    .start()
    .await
    .context("starting Postgres")?;
    record(postgres.id());
    let minio = labelled(
        MinIO::default(),
        "UPLOADER_TEST_MINIO_IMAGE",
        DEFAULT_MINIO_IMAGE,
    )
    .start()
    .await
    .context("starting MinIO")?;
    record(minio.id());
    let s3_default = std::env::var("UPLOADER_TEST_MINIO_IMAGE")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_MINIO_IMAGE.to_owned());
    let checksum_store = labelled(MinIO::default(), CHECKSUM_IMAGE_VARIABLE, &s3_default)
        .start()
        .await
        .with_context(|| format!("starting the S3 store of {CHECKSUM_IMAGE_VARIABLE}"))?;
    record(checksum_store.id());

    let pg_port = postgres
        .get_host_port_ipv4(5432.tcp())
        .await
        .context("Postgres port")?;
    let s3_port = minio
        .get_host_port_ipv4(9000.tcp())
        .await
        .context("MinIO port")?;
    let checksum_port = checksum_store
        .get_host_port_ipv4(9000.tcp())
        .await
        .context("the checksum store's port")?;
    let server_url = format!("postgres://postgres:postgres@127.0.0.1:{pg_port}/");
    let infrastructure = Infrastructure {
        admin_url: format!("{server_url}postgres"),
        server_url,
        s3_endpoint: format!("http://127.0.0.1:{s3_port}"),
        s3_checksum_endpoint: format!("http://127.0.0.1:{checksum_port}"),
        postgres_id: postgres.id().to_owned(),
    };
    prepare_template(&infrastructure)
        .await
        .context("preparing the template database")?;
    Ok((infrastructure, (postgres, minio, checksum_store)))
}

fn labelled<I: Image>(image: I, variable: &str, default: &str) -> ContainerRequest<I> {
    let [name, tag] = image_from_env(variable, default);
    image
        .with_name(name)
        .with_tag(tag)
        .with_label(LABEL.0, LABEL.1)
        .with_startup_timeout(Duration::from_secs(120))
}

/// `name:tag` from the environment (or the default), split at the last ':' that is not part
/// of a registry host such as `localhost:5000/postgres`.
fn image_from_env(variable: &str, default: &str) -> [String; 2] {
    let image = std::env::var(variable)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.into());
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => [name.into(), tag.into()],
        _ => [image, "latest".into()],
    }
}

/// Migrates the template with the application's own migrations, then makes sure nothing
/// stays connected to it (a template with sessions cannot be copied).
async fn prepare_template(infrastructure: &Infrastructure) -> anyhow::Result<()> {
    let admin = connect(&infrastructure.admin_url).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {TEMPLATE_DATABASE}"))
        .await
        .context("creating the template database")?;
    let settings = DatabaseSettings {
        url: Some(SecretString::from(format!(
            "{}{TEMPLATE_DATABASE}",
            infrastructure.server_url
        ))),
        pool_size: 1,
        ..DatabaseSettings::default()
    };
    let pool = cloud_asset_uploader::db::connect_lazy(&settings)?;
    cloud_asset_uploader::db::migrate(&pool)
        .await
        .context("running the migrations")?;
    drop(pool);
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&TEMPLATE_DATABASE],
        )
        .await
        .context("closing connections to the template")?;
    Ok(())
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// aws-config's default chain gives the S3 backend its credentials; the instance-metadata
/// provider is disabled so a missing credential fails fast instead of timing out.
fn set_aws_environment() {
    // SAFETY: runs once, inside the OnceLock initialiser, before any application (and thus
    // any AWS SDK code reading the environment) is built; no other thread reads these.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", MINIO_CREDENTIALS.0);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", MINIO_CREDENTIALS.1);
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
}

fn record(id: &str) {
    CONTAINER_IDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(id.to_owned());
}

/// Statics are never dropped, so the containers would outlive the test run; this removes
/// them (and their volumes) when the process exits, whatever the tests' outcome.
#[ctor::dtor]
fn remove_containers() {
    let ids = std::mem::take(&mut *CONTAINER_IDS.lock().unwrap_or_else(|e| e.into_inner()));
    if ids.is_empty() {
        return;
    }
    // No printing here: the standard streams may already be shut down.
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", "-v"])
        .args(&ids)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}
