//! Building the application from settings, and running it until told to stop.

mod retry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use salvo::conn::tcp::TcpAcceptor;
use salvo::{Server, Service};
use url::Url;

use crate::config::Settings;
use crate::db::{self, AssetRepository};
use crate::http;
use crate::state::AppState;
use crate::storage::{self, local::LocalStorage};

/// A bound, ready-to-run server.
pub struct Application {
    acceptor: TcpAcceptor,
    service: Service,
    local_addr: SocketAddr,
    shutdown_timeout: Duration,
}

impl Application {
    /// Binds `server.bind`, migrates the database (when `database.migrate_on_start`) and
    /// connects storage. Port 0 binds a free port; see [`Application::port`].
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(&settings.server.bind)
            .await
            .with_context(|| format!("binding server.bind {}", settings.server.bind))?;
        let local_addr = listener.local_addr().context("reading the bound address")?;
        let public_url = public_url(&settings, local_addr)?;

        let startup_budget = Duration::from_secs(settings.server.startup_timeout_secs);
        let pool = db::connect_lazy(&settings.database)?;
        if settings.database.migrate_on_start {
            let applied = retry::with_backoff("migrating the database", startup_budget, || {
                db::migrate(&pool)
            })
            .await?;
            for migration in applied {
                tracing::info!(%migration, "applied migration");
            }
        }
        let local_storage = match settings.storage.backend {
            crate::config::StorageBackend::Local => {
                Some(Arc::new(LocalStorage::open(&settings, &public_url)?))
            }
            crate::config::StorageBackend::S3 => None,
        };
        let storage: Arc<dyn storage::Storage> = match &local_storage {
            Some(local) => local.clone(),
            None => {
                retry::with_backoff("connecting storage", startup_budget, || {
                    storage::from_settings(&settings, &public_url)
                })
                .await?
            }
        };
        let state = AppState {
            assets: AssetRepository::new(pool.clone()),
            pool,
            storage,
            local_storage,
            settings: Arc::new(settings.clone()),
        };
        let acceptor = TcpAcceptor::try_from(listener).context("preparing the listener")?;
        Ok(Self {
            acceptor,
            service: http::service(state),
            local_addr,
            shutdown_timeout: Duration::from_secs(settings.server.shutdown_timeout_secs),
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting connections and lets
    /// in-flight requests finish for at most `server.shutdown_timeout_secs`.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let server = Server::new(self.acceptor);
        let handle = server.handle();
        let timeout = self.shutdown_timeout;
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            handle.stop_graceful(Some(timeout));
        });
        tracing::info!(address = %self.local_addr, "listening");
        server.try_serve(self.service).await.context("serving HTTP")
    }
}

/// `server.public_url`, or `http://<bound address>` when it is not set.
fn public_url(settings: &Settings, local_addr: SocketAddr) -> anyhow::Result<Url> {
    let text = match &settings.server.public_url {
        Some(url) => url.clone(),
        None => format!("http://{local_addr}"),
    };
    Url::parse(&text).with_context(|| format!("server.public_url {text} is not a URL"))
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
