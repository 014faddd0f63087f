//! TLS to Postgres: libpq's `sslmode` and `sslrootcert`, over rustls.
//!
//! tokio-postgres decides only whether to ask for TLS (its `disable`, `prefer`, `require`);
//! what the server's certificate must prove is up to the rustls configuration it is handed.
//! So each libpq mode becomes the tokio-postgres mode that asks the same way, plus a
//! certificate verifier that checks what libpq checks in that mode:
//!
//! | `sslmode` | TLS | chain checked | host name checked |
//! |---|---|---|---|
//! | `disable` | never | | |
//! | `prefer` (default) | when the server offers it | no | no |
//! | `require` | always | no (yes when `sslrootcert` is set: `verify-ca`) | no |
//! | `verify-ca` | always | yes | no |
//! | `verify-full` | always | yes | yes |
//!
//! The roots are `sslrootcert`'s PEM file or, without one (or with libpq's `system`), the
//! system trust store, read through rustls-native-certs rather than a bundle compiled in:
//! the image ships Debian's CA bundle (the one the S3 client trusts too), and an operator can
//! add a private CA to the store, or point `SSL_CERT_FILE` at another bundle, without a
//! rebuild. Roots are read once, when the pool is built: a new bundle needs a restart.

mod verifiers;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::conninfo::TlsOptions;
use verifiers::{AnyCertificate, ChainOnly, file_roots, system_roots};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            // libpq's `allow` starts without TLS and retries with it; tokio-postgres cannot.
            "allow" => {
                return Err("database.url: sslmode=allow is not supported (use prefer)".into());
            }
            // The value is not echoed: a mangled string may have put a password here.
            _ => {
                return Err(
                    "database.url: sslmode must be one of disable, prefer, require, \
                            verify-ca, verify-full"
                        .into(),
                );
            }
        })
    }

    /// The mode as `database.url` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// The tokio-postgres mode that asks for TLS as this one does.
    fn negotiation(self) -> tokio_postgres::config::SslMode {
        match self {
            Self::Disable => tokio_postgres::config::SslMode::Disable,
            Self::Prefer => tokio_postgres::config::SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }
}

/// Where trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    System,
    File(PathBuf),
}

/// What the server's certificate must prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verification {
    Nothing,
    Chain,
    ChainAndName,
}

/// What one pool's connections require of TLS, from `database.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPolicy {
    mode: SslMode,
    /// `sslrootcert`, when given (`system` is [`Roots::System`]).
    root_cert: Option<Roots>,
}

impl TlsPolicy {
    /// The policy `options` ask for, with libpq's defaults: `prefer`, or `verify-full` when
    /// `sslrootcert=system`, which refuses weaker modes as libpq does.
    pub(super) fn from_options(options: &TlsOptions) -> Result<Self, String> {
        let root_cert = options.sslrootcert.as_deref().map(|path| match path {
            "system" => Roots::System,
            path => Roots::File(PathBuf::from(path)),
        });
        let mode = match (&options.sslmode, &root_cert) {
            (Some(mode), _) => SslMode::parse(mode)?,
            (None, Some(Roots::System)) => SslMode::VerifyFull,
            (None, _) => SslMode::Prefer,
        };
        if root_cert == Some(Roots::System) && mode != SslMode::VerifyFull {
            return Err(format!(
                "database.url: sslrootcert=system needs sslmode=verify-full, not {}",
                mode.as_str()
            ));
        }
        Ok(Self { mode, root_cert })
    }

    /// The `sslmode` in force.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// Sets on `config` whether tokio-postgres asks for TLS.
    pub(super) fn apply(&self, config: &mut tokio_postgres::Config) {
        config.ssl_mode(self.mode.negotiation());
    }

    /// Where the roots that failed to vouch for a certificate came from, for messages.
    pub(super) fn roots_description(&self) -> String {
        match &self.root_cert {
            Some(Roots::File(path)) => format!("sslrootcert {}", path.display()),
            _ => "the system trust store".into(),
        }
    }

    fn verification(&self) -> Verification {
        match (self.mode, &self.root_cert) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => {
                Verification::Nothing
            }
            (SslMode::Require | SslMode::VerifyCa, _) => Verification::Chain,
            (SslMode::VerifyFull, _) => Verification::ChainAndName,
        }
    }

    /// The rustls connector for this policy, its roots read now.
    pub(super) fn connector(&self) -> anyhow::Result<MakeRustlsConnect> {
        // Named explicitly: rustls has a process default only while exactly one provider is
        // compiled in, and the tests' dependencies add ring to the aws-lc-rs used here.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match self.verification() {
            Verification::Nothing => Arc::new(AnyCertificate(provider.clone())),
            Verification::Chain => Arc::new(ChainOnly(self.webpki(&provider)?)),
            Verification::ChainAndName => self.webpki(&provider)?,
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("configuring TLS for the database")?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }

    fn webpki(&self, provider: &Arc<CryptoProvider>) -> anyhow::Result<Arc<WebPkiServerVerifier>> {
        let roots = match &self.root_cert {
            Some(Roots::File(path)) => file_roots(path)?,
            _ => system_roots()?,
        };
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .context("database.url: building the certificate verifier")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(sslmode: Option<&str>, sslrootcert: Option<&str>) -> Result<TlsPolicy, String> {
        TlsPolicy::from_options(&TlsOptions {
            sslmode: sslmode.map(str::to_owned),
            sslrootcert: sslrootcert.map(str::to_owned),
        })
    }

    #[test]
    fn each_mode_checks_what_libpq_checks() {
        let cases = [
            (None, None, SslMode::Prefer, Verification::Nothing),
            (
                Some("disable"),
                None,
                SslMode::Disable,
                Verification::Nothing,
            ),
            (
                Some("prefer"),
                Some("/ca.pem"),
                SslMode::Prefer,
                Verification::Nothing,
            ),
            (
                Some("require"),
                None,
                SslMode::Require,
                Verification::Nothing,
            ),
            // libpq: a root certificate makes `require` behave as `verify-ca`.
            (
                Some("require"),
                Some("/ca.pem"),
                SslMode::Require,
                Verification::Chain,
            ),
            (
                Some("verify-ca"),
                None,
                SslMode::VerifyCa,
                Verification::Chain,
            ),
            (
                Some("verify-full"),
                None,
                SslMode::VerifyFull,
                Verification::ChainAndName,
            ),
            (
                None,
                Some("system"),
                SslMode::VerifyFull,
                Verification::ChainAndName,
            ),
        ];
        for (sslmode, sslrootcert, mode, verification) in cases {
            let policy = policy(sslmode, sslrootcert).unwrap();
            assert_eq!(policy.mode(), mode, "{sslmode:?} {sslrootcert:?}");
            assert_eq!(
                policy.verification(),
                verification,
                "{sslmode:?} {sslrootcert:?}"
            );
        }
    }

    #[test]
    fn tokio_postgres_asks_for_tls_as_libpq_would() {
        let negotiated = |mode: &str| {
            let mut config = tokio_postgres::Config::new();
            policy(Some(mode), None).unwrap().apply(&mut config);
            config.get_ssl_mode()
        };
        use tokio_postgres::config::SslMode as Negotiation;
        assert_eq!(negotiated("disable"), Negotiation::Disable);
        assert_eq!(negotiated("prefer"), Negotiation::Prefer);
        for mode in ["require", "verify-ca", "verify-full"] {
            assert_eq!(negotiated(mode), Negotiation::Require, "{mode}");
        }
    }

    #[test]
    fn an_unknown_mode_is_refused_naming_sslmode_but_not_the_value() {
        let error = policy(Some("hunter2"), None).unwrap_err();
        assert!(error.contains("sslmode must be one of"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let error = policy(Some("allow"), None).unwrap_err();
        assert!(error.contains("sslmode=allow is not supported"), "{error}");
    }

    #[test]
    fn the_system_roots_need_full_verification() {
        let error = policy(Some("require"), Some("system")).unwrap_err();
        assert!(
            error.contains("sslrootcert=system needs sslmode=verify-full"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_root_file_is_refused_when_the_pool_is_built() {
        let policy = policy(Some("verify-full"), Some("/nonexistent/ca.pem")).unwrap();
        let error = format!("{:#}", policy.connector().err().unwrap());
        assert!(error.contains("sslrootcert /nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn modes_without_verification_need_no_roots() {
        // No root store is read, so these work on a machine without CA certificates.
        for mode in ["disable", "prefer", "require"] {
            assert!(
                policy(Some(mode), None).unwrap().connector().is_ok(),
                "{mode}"
            );
        }
    }
}
