//! Why a connection to Postgres could not be opened, in one line that names the cause.
//!
//! tokio-postgres reports a refused connection as `db error` or `error performing TLS
//! handshake`, with the reason a few sources deep. [`ConnectError`] digs it out once, where
//! the connection is opened, so the pool's log, `/readyz`'s log, the start-up retries and
//! `migrate` all say the same thing. It never holds the URL or the password: it is built only
//! from what the server and the TLS library said, plus the `sslmode` in force.

use std::error::Error as _;

use rustls::CertificateError;
use tokio_postgres::error::SqlState;

use super::tls::{SslMode, TlsPolicy};

/// A connection that could not be opened (or was found closed when checked).
#[derive(Debug, Clone, thiserror::Error)]
#[error("database: {cause}")]
pub struct ConnectError {
    cause: String,
    permanent: bool,
}

impl ConnectError {
    /// Describes `error`, met while connecting under `policy`.
    pub(super) fn new(error: &tokio_postgres::Error, policy: &TlsPolicy) -> Self {
        if let Some(db) = error.as_db_error() {
            return Self::refused(db, policy.mode());
        }
        if let Some(tls) = rustls_error(error) {
            return Self::handshake(tls, policy);
        }
        let chain = crate::error::error_chain(error);
        if chain.ends_with("server does not support TLS") {
            return Self::permanent(format!(
                "the server does not support TLS but sslmode={}",
                policy.mode().as_str()
            ));
        }
        Self {
            cause: chain,
            permanent: false,
        }
    }

    /// Whether trying again cannot help: the server refused these credentials or this TLS
    /// configuration, as opposed to not answering (yet).
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// A refusal with this cause, for tests of what handles one.
    #[cfg(test)]
    pub(crate) fn for_tests(cause: &str, permanent: bool) -> Self {
        Self {
            cause: cause.to_owned(),
            permanent,
        }
    }

    fn permanent(cause: String) -> Self {
        Self {
            cause,
            permanent: true,
        }
    }

    /// The server answered with an error: its SQLSTATE and message (which name the user and
    /// database, never the password).
    fn refused(db: &tokio_postgres::error::DbError, mode: SslMode) -> Self {
        let said = format!("{} {}", db.code().code(), db.message());
        let plaintext_refused =
            db.message().contains("no encryption") || db.message().contains("SSL off");
        if mode == SslMode::Disable
            && *db.code() == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            && plaintext_refused
        {
            return Self::permanent(format!(
                "TLS required by the server but sslmode=disable ({said})"
            ));
        }
        Self {
            // Class 28: invalid authorization (wrong password, no such role, pg_hba.conf).
            permanent: db.code().code().starts_with("28"),
            cause: said,
        }
    }

    fn handshake(error: &rustls::Error, policy: &TlsPolicy) -> Self {
        let cause = match error {
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                expected,
                presented,
            }) => format!(
                "server certificate does not match host name {:?} (it names {}); connect by a \
                 name it names, or use sslmode=verify-ca",
                expected.to_str(),
                presented.join(", ")
            ),
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => {
                "server certificate does not match the host name".to_owned()
            }
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                "certificate not trusted (its issuer is not in {}); set sslrootcert to the CA \
                 bundle of the server",
                policy.roots_description()
            ),
            rustls::Error::InvalidCertificate(_) => format!("certificate not trusted ({error})"),
            _ => format!("TLS handshake failed ({error})"),
        };
        Self::permanent(cause)
    }
}

/// The rustls error a TLS handshake failed with: tokio-rustls wraps it in an `io::Error`,
/// which tokio-postgres keeps as its source.
fn rustls_error(error: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(inner);
        }
        source = cause.source();
    }
    None
}
