//! Postgres: the connection pool, migrations, and the [`AssetRepository`] that holds every
//! SQL statement of the crate. Connections use the TLS that `database.url`'s `sslmode` and
//! `sslrootcert` ask for (see the `tls` module).

mod assets;
mod connect_error;
mod connection;
mod conninfo;
mod events;
mod lifecycle;
mod listing;
mod multipart;
mod shared;
mod storage_keys;
pub mod store_identity;
mod tls;

use std::time::Duration;

use anyhow::Context;
use bb8::Pool;
use secrecy::ExposeSecret;

pub use assets::{AssetRepository, IssueOutcome, NewUpload, Quota, QuotaExceeded};
pub use connect_error::ConnectError;
pub use connection::{PgConnection, PgConnectionManager};
pub use events::{
    AttemptRecord, ClaimedDelivery, DeliveryRow, EventRepository, QueueStats, RetrySelection,
};
pub use listing::AssetFilter;
pub use shared::SharedConnections;

use crate::config::DatabaseSettings;
use tls::TlsPolicy;

/// The pool every request borrows connections from.
pub type PgPool = Pool<PgConnectionManager>;

/// Errors from the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had within the configured timeout.
    #[error("no database connection available within the timeout")]
    Unavailable,
    /// A connection could not be opened; says why in one line.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("database query failed")]
    Query(#[from] tokio_postgres::Error),
    /// A stored row violates an invariant of the domain (a bug or a hand-edited row).
    #[error("corrupt asset row: {0}")]
    Corrupt(String),
}

impl From<bb8::RunError<ConnectError>> for DbError {
    fn from(error: bb8::RunError<ConnectError>) -> Self {
        match error {
            bb8::RunError::User(e) => Self::Connect(e),
            bb8::RunError::TimedOut => Self::Unavailable,
        }
    }
}

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Key of the advisory lock that serialises migrations between replicas starting together.
const MIGRATION_LOCK: i64 = 0x5550_4c4f_4144_4552; // "UPLOADER"

/// Builds the pool without waiting for the database: connections are opened on demand, so the
/// server can start (and report not-ready) while Postgres is still coming up. TLS settings
/// are checked, and `sslrootcert` read, now.
pub fn connect_lazy(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let (config, policy) = connection_config(settings)?;
    let manager = PgConnectionManager::new(config, policy.connector()?, policy);
    Ok(Pool::builder()
        .max_size(settings.pool_size)
        .connection_timeout(Duration::from_secs(settings.connect_timeout_secs))
        .error_sink(Box::new(LogSink))
        .build_unchecked(manager))
}

/// How long sent bytes may stay unacknowledged before a connection is given up (Linux), unless
/// `database.url` sets `tcp_user_timeout`. Without it, a database that vanished without closing
/// its sockets (a network partition, a host that lost power) would hold the statements queued
/// on a connection, many requests' on a shared one, until TCP gives up many minutes later. A
/// long-running statement does not trip it: Postgres's host acknowledges the bytes at once.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection settings of `database.url`, with the server's defaults for what it leaves
/// out, and its TLS policy.
fn connection_config(
    settings: &DatabaseSettings,
) -> anyhow::Result<(tokio_postgres::Config, TlsPolicy)> {
    let url = settings.url.as_ref().context("database.url is not set")?;
    let (rest, tls_options) =
        conninfo::take_tls_options(url.expose_secret()).map_err(anyhow::Error::msg)?;
    let policy = TlsPolicy::from_options(&tls_options).map_err(anyhow::Error::msg)?;
    let mut config: tokio_postgres::Config = rest.parse().map_err(|_| {
        anyhow::anyhow!("database.url is not a valid Postgres URL or key=value string")
    })?;
    policy.apply(&mut config);
    config.application_name("cloud-asset-uploader");
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(settings.connect_timeout_secs));
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    Ok((config, policy))
}

/// Applies pending migrations, holding an advisory lock so concurrent starts do not race.
/// Returns the names of the migrations applied (empty when the schema was current).
///
/// The migration gets a connection of its own, opened through the pool's manager: a pooled
/// checkout that fails only says it timed out, this one fails with why it could not connect.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let mut conn = tokio::time::timeout(
        pool.config().connection_timeout,
        pool.dedicated_connection(),
    )
    .await
    .map_err(|_| DbError::Unavailable)
    .context("connecting to the database to migrate")??;
    conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("taking the migration lock")?;
    let report = embedded::migrations::runner().run_async(&mut *conn).await;
    let unlock = conn
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let report = report.context("applying migrations")?;
    unlock.context("releasing the migration lock")?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| format!("V{}__{}", m.version(), m.name()))
        .collect())
}

/// A cheap round trip that proves the database answers.
pub async fn ping(pool: &PgPool) -> Result<(), DbError> {
    let conn = pool.get().await?;
    conn.simple_query("SELECT 1").await?;
    Ok(())
}

/// Sends connection errors of the pool's background work to the log: the pool opens its
/// connections in the background, so this is where a refused one is told.
#[derive(Debug, Clone, Copy)]
struct LogSink;

impl bb8::ErrorSink<ConnectError> for LogSink {
    fn sink(&self, error: ConnectError) {
        tracing::warn!(error = %error, "database connection error");
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<ConnectError>> {
        Box::new(*self)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn settings(url: &str) -> DatabaseSettings {
        DatabaseSettings {
            url: Some(SecretString::from(url.to_owned())),
            connect_timeout_secs: 7,
            ..DatabaseSettings::default()
        }
    }

    #[test]
    fn connections_get_the_server_defaults() {
        let (config, policy) = connection_config(&settings("postgres://u:p@db/assets")).unwrap();
        assert_eq!(policy.mode(), tls::SslMode::Prefer, "libpq's default");
        assert_eq!(config.get_application_name(), Some("cloud-asset-uploader"));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(7)));
        assert_eq!(config.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
    }

    #[test]
    fn the_url_overrides_the_defaults() {
        let url = "postgres://u:p@db/assets?connect_timeout=2&tcp_user_timeout=5";
        let (config, _) = connection_config(&settings(url)).unwrap();
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert_eq!(config.get_tcp_user_timeout(), Some(&Duration::from_secs(5)));
    }

    #[test]
    fn sslmode_and_sslrootcert_are_read_from_both_forms() {
        for url in [
            "postgres://u:p@db/assets?sslmode=verify-full&sslrootcert=%2Fca.pem&connect_timeout=2",
            "host=db user=u password=p dbname=assets sslmode=verify-full sslrootcert=/ca.pem \
             connect_timeout=2",
        ] {
            let (config, policy) = connection_config(&settings(url)).unwrap();
            assert_eq!(policy.mode(), tls::SslMode::VerifyFull, "{url}");
            assert_eq!(policy.roots_description(), "sslrootcert /ca.pem", "{url}");
            assert_eq!(
                config.get_ssl_mode(),
                tokio_postgres::config::SslMode::Require
            );
            assert_eq!(config.get_password(), Some(&b"p"[..]), "{url}");
            assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(2)));
        }
    }

    #[test]
    fn a_bad_sslmode_is_refused_naming_sslmode_without_echoing_the_url() {
        for url in [
            "postgres://u:hunter2@db/assets?sslmode=strict",
            "host=db password=hunter2 sslmode=strict",
        ] {
            let error = connection_config(&settings(url)).unwrap_err().to_string();
            assert!(error.contains("sslmode must be one of"), "{error}");
            assert!(
                !error.contains("hunter2") && !error.contains("strict"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        let error = connection_config(&settings("postgres://u:secret@db:notaport/x")).unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}
