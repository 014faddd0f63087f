//! Logging: a `tracing` subscriber writing text or JSON lines to stdout.
//!
//! Lines are written by a thread of their own: a request only queues its line, and under load
//! the thread writes many lines with one system call.

use std::io::{BufWriter, IsTerminal};
use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::{AuthMode, LogFormat, LogSettings, Settings, StorageBackend};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `log.level`. Keep the
/// guard until the process ends: dropping it writes out the lines still queued.
pub fn init(settings: &LogSettings) -> WorkerGuard {
    // Not lossy: when the queue is full, a request waits rather than its line being dropped.
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(BufWriter::new(std::io::stdout()));
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer)
        // Colour codes only for a terminal, never into collected logs.
        .with_ansi(std::io::stdout().is_terminal());
    // A second init (tests building several apps) keeps the first subscriber.
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    guard
}

/// Logs, one line each, where the configuration came from and the effective storage,
/// sweeper and authentication settings: what an operator checks first when a server does
/// not behave as configured. Never secrets: no keys, passwords or URLs with credentials.
pub fn log_effective_settings(settings: &Settings) {
    tracing::info!(
        profile = %settings.profile,
        layers = %settings.layers.join(", "),
        "configuration loaded"
    );
    let storage = &settings.storage;
    match storage.backend {
        StorageBackend::Local => tracing::info!(
            backend = "local",
            root = %absolute(&storage.local.root).display(),
            bucket = %storage.bucket,
            key_prefix = %storage.key_prefix,
            signing_key = if storage.local.signing_key.is_some() { "configured" } else { "generated under the root" },
            "storage"
        ),
        StorageBackend::S3 => tracing::info!(
            backend = "s3",
            bucket = %storage.bucket,
            key_prefix = %storage.key_prefix,
            region = %storage.s3.region,
            endpoint = storage.s3.endpoint.as_deref().map(without_userinfo).as_deref().unwrap_or("AWS"),
            public_endpoint = storage.s3.public_endpoint.as_deref().map(without_userinfo).as_deref().unwrap_or("(the endpoint)"),
            "storage"
        ),
    }
    let lifecycle = &settings.lifecycle;
    tracing::info!(
        enabled = lifecycle.sweeper_enabled,
        interval = %humantime_serde::re::humantime::format_duration(lifecycle.sweep_interval),
        pending_grace = %humantime_serde::re::humantime::format_duration(lifecycle.pending_grace),
        batch_size = lifecycle.sweep_batch_size,
        "sweeper"
    );
    let auth = &settings.auth;
    let jwt = &auth.jwt;
    let keys = match auth.mode {
        AuthMode::None => "none".to_owned(),
        AuthMode::ApiKey => format!("{} API key(s)", auth.api_keys.len()),
        AuthMode::Jwt if jwt.hs256_secret.is_some() => "HS256 secret".to_owned(),
        AuthMode::Jwt if jwt.public_key_pem.is_some() => "PEM public key".to_owned(),
        AuthMode::Jwt => match &jwt.jwks_path {
            Some(path) => format!("JWKS file {}", absolute(path).display()),
            None => "none".to_owned(),
        },
    };
    tracing::info!(
        mode = ?auth.mode,
        keys,
        issuer = jwt.issuer.as_deref().unwrap_or("(any)"),
        audience = jwt.audience.as_deref().unwrap_or("(any)"),
        "authentication"
    );
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// A URL without `user:password@`, for the log.
fn without_userinfo(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}
