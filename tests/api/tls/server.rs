//! A Postgres that accepts only TLS: `ssl=on` with a certificate for `localhost` and
//! `127.0.0.1` signed by a CA made here, and a pg_hba.conf whose only TCP line is `hostssl`.
//! One per test process, on its own thread and runtime like the shared containers (a
//! container started on a test's runtime would lose its Docker client when that test ends).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use testcontainers_modules::testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// The server's superuser password: the refusal tests check that no message repeats it.
pub const PASSWORD: &str = "tls-Secret-7f3a";

/// Image of the shared Postgres (`UPLOADER_TEST_POSTGRES_IMAGE`, as `name:tag`).
const DEFAULT_IMAGE: &str = "postgres:17-alpine";
const READY: &str = "database system is ready to accept connections";

/// Unix-socket connections (the image's own set-up) are trusted; over TCP, TLS or nothing.
const HBA: &str = "local all all trust\nhostssl all all all scram-sha-256\n";

/// Postgres reads a key only when the server's user owns it with mode 0600, and a copied file
/// belongs to root: the key is copied once more, as that user, before the image's own
/// entrypoint starts the server with TLS on.
const START: &str = "cp /tls/server.key.copy /tmp/server.key && chown postgres /tmp/server.key \
    && chmod 600 /tmp/server.key && exec docker-entrypoint.sh postgres -c fsync=off \
    -c ssl=on -c ssl_cert_file=/tls/server.crt -c ssl_key_file=/tmp/server.key \
    -c hba_file=/tls/pg_hba.conf";

/// Where the TLS-only server answers, and root certificates to try against it.
pub struct TlsServer {
    /// The host port mapped to the server's 5432.
    pub port: u16,
    /// PEM of the CA that signed the server's certificate.
    pub ca_file: PathBuf,
    /// PEM of a CA that signed nothing the server holds.
    pub other_ca_file: PathBuf,
}

static SERVER: OnceLock<Result<TlsServer, String>> = OnceLock::new();
static CONTAINER_ID: OnceLock<String> = OnceLock::new();

/// The TLS-only server, started on first call; panics (failing the test) if it cannot start.
pub fn shared() -> &'static TlsServer {
    let started = SERVER.get_or_init(|| {
        let (report, started) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("tls-postgres".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building the TLS server's runtime");
                runtime.block_on(async move {
                    match start().await {
                        Ok((server, container)) => {
                            let _ = report.send(Ok(server));
                            // Kept until the process exits; `remove_container` removes it.
                            let _keep_alive = container;
                            std::future::pending::<()>().await;
                        }
                        Err(error) => {
                            let _ = report.send(Err(format!("{error:#}")));
                        }
                    }
                });
            })
            .expect("spawning the TLS server's thread");
        started
            .recv()
            .unwrap_or_else(|_| Err("the TLS server's thread died while starting".into()))
    });
    match started {
        Ok(server) => server,
        Err(error) => panic!("starting the TLS-only Postgres: {error}"),
    }
}

async fn start() -> anyhow::Result<(TlsServer, ContainerAsync<GenericImage>)> {
    let (ca, issuer) = certificate_authority("Test CA")?;
    let (other_ca, _) = certificate_authority("Another CA")?;
    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let server_cert = params.signed_by(&server_key, &issuer)?;

    let directory = std::env::temp_dir()
        .join("cau-tests")
        .join(format!("tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&directory).context("creating the certificate directory")?;
    let ca_file = directory.join("ca.pem");
    let other_ca_file = directory.join("other-ca.pem");
    std::fs::write(&ca_file, ca.pem())?;
    std::fs::write(&other_ca_file, other_ca.pem())?;

    let [name, tag] = image();
    let container = GenericImage::new(name, tag)
        .with_entrypoint("/bin/sh")
        .with_exposed_port(5432.tcp())
        .with_wait_for(WaitFor::message_on_stderr(READY))
        .with_wait_for(WaitFor::message_on_stdout(READY))
        .with_env_var("POSTGRES_PASSWORD", PASSWORD)
        .with_copy_to("/tls/server.crt", server_cert.pem().into_bytes())
        .with_copy_to(
            "/tls/server.key.copy",
            server_key.serialize_pem().into_bytes(),
        )
        .with_copy_to("/tls/pg_hba.conf", HBA.as_bytes().to_vec())
        .with_cmd(["-c", START])
        .with_label("cloud-asset-uploader-tests", "1")
        .with_startup_timeout(Duration::from_secs(120))
        .start()
        .await
        .context("starting the TLS-only Postgres")?;
    let _ = CONTAINER_ID.set(container.id().to_owned());
    let port = container.get_host_port_ipv4(5432.tcp()).await?;
    let server = TlsServer {
        port,
        ca_file,
        other_ca_file,
    };
    Ok((server, container))
}

/// A CA named `name`: its certificate, and the issuer that signs with its key.
pub fn certificate_authority(
    name: &str,
) -> anyhow::Result<(rcgen::Certificate, Issuer<'static, KeyPair>)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let certificate = params.self_signed(&key)?;
    Ok((certificate, Issuer::new(params, key)))
}

/// `name:tag` of `UPLOADER_TEST_POSTGRES_IMAGE`, split as the shared containers split it.
fn image() -> [String; 2] {
    let image = std::env::var("UPLOADER_TEST_POSTGRES_IMAGE")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_IMAGE.into());
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => [name.into(), tag.into()],
        _ => [image, "latest".into()],
    }
}

/// The server outlives every test (statics are never dropped): removed when the process exits.
#[ctor::dtor]
fn remove_container() {
    if let Some(id) = CONTAINER_ID.get() {
        // No printing here: the standard streams may already be shut down.
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", "-v", id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
