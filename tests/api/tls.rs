//! TLS to Postgres: each `sslmode` against a server that accepts only TLS (see `server`), and
//! the one-line refusals when the mode, the roots or the host name do not fit.

pub mod server;

use std::path::Path;

use cloud_asset_uploader::config::DatabaseSettings;
use cloud_asset_uploader::db::{self, PgPool};
use secrecy::SecretString;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{AccessGrant, Backend, json_with_status, sample_file, spawn_app_with};
use server::{PASSWORD, TlsServer};

fn pool(url: &str) -> PgPool {
    let settings = DatabaseSettings {
        url: Some(SecretString::from(url.to_owned())),
        pool_size: 1,
        ..DatabaseSettings::default()
    };
    db::connect_lazy(&settings).expect("building the pool")
}

/// A URL to the TLS-only server as `localhost`, the name its certificate was issued for.
fn url(server: &TlsServer, database: &str, query: &str) -> String {
    format!(
        "postgres://postgres:{PASSWORD}@localhost:{}/{database}?{query}",
        server.port
    )
}

/// A key=value string reaching the server at 127.0.0.1 while naming it `host` for TLS.
fn key_values(server: &TlsServer, host: &str, options: &str) -> String {
    format!(
        "host={host} hostaddr=127.0.0.1 port={} user=postgres password={PASSWORD} \
         dbname=postgres {options}",
        server.port
    )
}

fn root(path: &Path) -> String {
    path.display().to_string()
}

/// Whether the connection the pool opens is encrypted, as the server sees it.
async fn uses_tls(pool: &PgPool) -> bool {
    let connection = pool
        .dedicated_connection()
        .await
        .unwrap_or_else(|error| panic!("connecting: {error}"));
    connection
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("reading pg_stat_ssl")
        .get(0)
}

/// The one line a refused connection fails `migrate` with; it must not repeat the password.
async fn refusal(url: &str) -> String {
    let error = db::migrate(&pool(url))
        .await
        .expect_err("the connection must be refused");
    let message = format!("{error:#}");
    assert!(
        !message.contains(PASSWORD),
        "the password leaked: {message}"
    );
    message
}

#[tokio::test]
async fn require_encrypts_the_connection() {
    let server = server::shared();
    let pool = pool(&url(server, "postgres", "sslmode=require"));
    assert!(uses_tls(&pool).await);
}

#[tokio::test]
async fn prefer_the_default_uses_tls_when_the_server_offers_it() {
    let server = server::shared();
    for query in ["sslmode=prefer", "application_name=default-mode"] {
        let pool = pool(&url(server, "postgres", query));
        assert!(uses_tls(&pool).await, "{query}");
    }
}

#[tokio::test]
async fn verify_full_with_the_right_root_connects() {
    let server = server::shared();
    let query = format!("sslmode=verify-full&sslrootcert={}", root(&server.ca_file));
    let pool = pool(&url(server, "postgres", &query));
    assert!(uses_tls(&pool).await);
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_from_another_ca() {
    let server = server::shared();
    for mode in ["verify-full", "verify-ca", "require"] {
        let query = format!("sslmode={mode}&sslrootcert={}", root(&server.other_ca_file));
        let message = refusal(&url(server, "postgres", &query)).await;
        assert!(
            message.contains("database: certificate not trusted")
                && message.contains(&root(&server.other_ca_file)),
            "{mode}: {message}"
        );
    }
}

#[tokio::test]
async fn verify_full_refuses_a_host_name_the_certificate_does_not_name() {
    let server = server::shared();
    let options = format!("sslmode=verify-full sslrootcert={}", root(&server.ca_file));
    let message = refusal(&key_values(server, "db.example.invalid", &options)).await;
    assert!(
        message.contains("database: server certificate does not match host name")
            && message.contains("db.example.invalid"),
        "{message}"
    );
}

#[tokio::test]
async fn verify_ca_checks_the_chain_but_not_the_host_name() {
    let server = server::shared();
    let options = format!("sslmode=verify-ca sslrootcert={}", root(&server.ca_file));
    let pool = pool(&key_values(server, "db.example.invalid", &options));
    assert!(uses_tls(&pool).await);
}

#[tokio::test]
async fn disable_is_refused_by_a_server_that_requires_tls() {
    let server = server::shared();
    let message = refusal(&key_values(server, "localhost", "sslmode=disable")).await;
    assert!(
        message.contains("database: TLS required by the server but sslmode=disable"),
        "{message}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_the_servers_words() {
    let server = server::shared();
    let url = format!(
        "postgres://postgres:not-the-password@localhost:{}/postgres?sslmode=require",
        server.port
    );
    let message = refusal(&url).await;
    assert!(
        message.contains("28P01 password authentication failed for user \"postgres\"")
            && !message.contains("not-the-password"),
        "{message}"
    );
}

#[tokio::test]
async fn require_is_refused_by_a_server_without_tls() {
    // Arrange: a socket that answers the TLS request as Postgres with `ssl=off` does, "N".
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut ssl_request = [0; 8];
            if socket.read_exact(&mut ssl_request).await.is_ok() {
                let _ = socket.write_all(b"N").await;
            }
        }
    });

    // Act
    let message = refusal(&format!(
        "postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres?sslmode=require"
    ))
    .await;

    // Assert
    assert!(
        message.contains("database: the server does not support TLS but sslmode=require"),
        "{message}"
    );
}

#[tokio::test]
async fn an_application_over_verify_full_serves_uploads_and_is_ready() {
    // Arrange: a database of the test's own on the TLS-only server, migrated at start.
    let server = server::shared();
    let query = format!("sslmode=verify-full&sslrootcert={}", root(&server.ca_file));
    let database = format!("tls_{}", uuid::Uuid::new_v4().simple());
    let admin = pool(&url(server, "postgres", &query));
    admin
        .dedicated_connection()
        .await
        .expect("connecting to create the database")
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .expect("creating the database");
    let database_url = url(server, &database, &query);
    let app = spawn_app_with(Backend::Local, |settings| {
        settings.database.url = Some(SecretString::from(database_url));
        settings.database.migrate_on_start = true;
    })
    .await;
    let bytes = sample_file(4096);

    // Act
    let asset_id = app.store("tls/photo.bin", &bytes).await;
    let grant: AccessGrant = json_with_status(app.access(asset_id, None).await, 200).await;
    let downloaded = app.download(&grant.url).await.bytes().await.unwrap();
    let ready = app.get("/readyz").await;

    // Assert
    assert_eq!(downloaded.as_ref(), bytes.as_slice());
    assert_eq!(ready.status().as_u16(), 200);
    let listed = app.get("/api/assets?status=complete").await;
    let listed: serde_json::Value = json_with_status(listed, 200).await;
    assert_eq!(listed["items"][0]["asset_id"], json!(asset_id), "{listed}");
}
