//! Building the application from settings, and running it until told to stop.

mod listener;
mod parse_errors;
mod retry;
mod store_gate;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use salvo::conn::tcp::TcpAcceptor;
use salvo::{Server, Service};

use crate::auth::Authenticator;
use crate::auth::upload_token::UploadTokens;
use crate::config::Settings;
use crate::db::{self, AssetRepository};
use crate::events::{Dispatcher, Subscriptions};
use crate::http;
use crate::http::rate_limit::RateLimits;
use crate::lifecycle::Sweeper;
use crate::metrics::Metrics;
use crate::metrics::http::MetricsListener;
use crate::metrics::storage::InstrumentedStorage;
use crate::state::AppState;
use crate::storage::identity::StoreGuard;
use crate::storage::{self, local::LocalStorage};
use listener::ClosableAcceptor;
use store_gate::StoreGate;

/// How long the connections accepted last before the listener closed get to have their
/// first request read before the graceful stop closes idle connections.
const ACCEPTED_SETTLE: Duration = Duration::from_millis(500);

/// A bound, ready-to-run server.
pub struct Application {
    acceptor: TcpAcceptor,
    service: Service,
    local_addr: SocketAddr,
    shutdown_timeout: Duration,
    /// How long a stopping server keeps serving, not ready, before it stops listening.
    shutdown_drain: Duration,
    /// Set when a shutdown begins (`/readyz` then answers 503, responses close connections).
    draining: Arc<AtomicBool>,
    /// `/metrics` on its own port, when `metrics.bind` is set.
    metrics_listener: Option<MetricsListener>,
    max_header_bytes: usize,
    /// Set to true (or dropped) to stop the webhook dispatcher.
    stop_dispatcher: tokio::sync::watch::Sender<bool>,
}

impl Application {
    /// Binds `server.bind`, migrates the database (when `database.migrate_on_start`) and
    /// connects storage. Port 0 binds a free port; see [`Application::port`].
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(settings.server.bind)
            .await
            .with_context(|| format!("binding server.bind {}", settings.server.bind))?;
        let local_addr = listener.local_addr().context("reading the bound address")?;
        let public_url = settings.server.public_url_or(local_addr);

        let startup_budget = Duration::from_secs(settings.server.startup_timeout_secs);
        let pool = db::connect_lazy(&settings.database)?;
        let shared_connections =
            db::SharedConnections::new(pool.clone(), settings.database.shared_connections as usize)
                .map(Arc::new);
        let metrics = Arc::new(Metrics::new(pool.clone(), shared_connections.clone()));
        let metrics_listener = match settings.metrics.separate_bind() {
            Some(bind) => Some(MetricsListener::bind(bind, metrics.clone()).await?),
            None => None,
        };
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
        let store = Arc::new(StoreGuard::new(
            storage.clone(),
            pool.clone(),
            settings.storage.adopt_store,
        ));
        check_store(&store, startup_budget).await;
        let auth = Authenticator::from_settings(&settings.auth)?;
        match &auth {
            Authenticator::Anonymous => tracing::warn!(
                "auth.mode is \"none\": every request acts as the owner \"anonymous\"; do not expose this server"
            ),
            Authenticator::Jwt(verifier) => verifier.spawn_reloader(),
            Authenticator::ApiKey(_) => {}
        }
        let rate_limits = RateLimits::from_settings(&settings.rate_limit, &metrics)
            .await?
            .map(Arc::new);
        if let Some(limits) = &rate_limits {
            spawn_rate_limit_housekeeping(Arc::downgrade(limits));
        }
        let trusted_proxies = settings.server.trusted_proxies.clone();
        let state = AppState {
            auth: Arc::new(auth),
            upload_tokens: UploadTokens::from_settings(
                &settings.upload_tokens,
                settings.is_development(),
            )
            .map(Arc::new),
            rate_limits,
            trusted_proxies: Arc::new(trusted_proxies),
            assets: AssetRepository::new(pool.clone())
                .with_shared_connections(shared_connections)
                .with_subscriptions(Subscriptions::from_settings(&settings.webhooks)),
            pool,
            storage: Arc::new(InstrumentedStorage::new(storage, metrics.clone())),
            local_storage,
            store: store.clone(),
            settings: Arc::new(settings.clone()),
            metrics,
            draining: Arc::new(AtomicBool::new(false)),
        };
        let draining = state.draining.clone();
        if settings.lifecycle.sweeper_enabled {
            Sweeper::new(state.assets.clone(), state.storage.clone(), &settings)
                .with_metrics(state.metrics.clone())
                .with_store_guard(store.clone())
                .spawn(settings.lifecycle.sweep_interval);
        }
        // Every replica dispatches; claims keep them from sending one delivery twice at once.
        let (stop_dispatcher, stopped) = tokio::sync::watch::channel(false);
        Dispatcher::new(
            state.pool.clone(),
            &settings.webhooks,
            state.metrics.clone(),
        )?
        .spawn(stopped);
        let acceptor = TcpAcceptor::try_from(listener).context("preparing the listener")?;
        Ok(Self {
            acceptor,
            service: http::service(state).hoop(StoreGate(store)),
            local_addr,
            shutdown_timeout: Duration::from_secs(settings.server.shutdown_timeout_secs),
            shutdown_drain: Duration::from_secs(settings.server.shutdown_drain_secs),
            draining,
            metrics_listener,
            max_header_bytes: settings.server.max_header_bytes,
            stop_dispatcher,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The address of the separate `/metrics` listener, when `metrics.bind` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .map(MetricsListener::local_addr)
    }

    /// Serves until `shutdown` completes. Then it drains: `/readyz` answers 503 at once and
    /// every response closes its connection, while requests are still served for
    /// `server.shutdown_drain_secs` (load balancers take the instance out meanwhile); then it
    /// stops listening (new connections are refused) and lets in-flight requests finish for at
    /// most `server.shutdown_timeout_secs`.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (acceptor, close_listener) =
            ClosableAcceptor::new(self.acceptor, self.max_header_bytes);
        let server = Server::new(acceptor);
        let handle = server.handle();
        let metrics_handle = self.metrics_listener.map(MetricsListener::spawn);
        let (timeout, drain, draining) =
            (self.shutdown_timeout, self.shutdown_drain, self.draining);
        let stop_dispatcher = self.stop_dispatcher;
        tokio::spawn(async move {
            shutdown.await;
            draining.store(true, Ordering::Release);
            // No new attempts from here; one under way finishes, its claim is recorded.
            let _ = stop_dispatcher.send(true);
            tracing::info!(
                drain_secs = drain.as_secs(),
                "shutting down: not ready, draining"
            );
            tokio::time::sleep(drain).await;
            close_listener.close().await;
            tracing::info!("shutting down: stopped listening, finishing in-flight requests");
            // The last connections accepted may not have had their request read yet; hyper's
            // graceful stop would close them as idle, failing requests already sent.
            tokio::time::sleep(ACCEPTED_SETTLE.min(timeout)).await;
            handle.stop_graceful(Some(timeout.saturating_sub(ACCEPTED_SETTLE)));
            if let Some(metrics) = metrics_handle {
                metrics.stop_graceful(None);
            }
        });
        tracing::info!(address = %self.local_addr, "listening");
        server.try_serve(self.service).await.context("serving HTTP")
    }
}

/// Checks the store identity before serving. When the database or storage does not answer
/// yet, the server starts unverified (the API answers 503, `/readyz` retries the check) and the
/// check is retried in the background for the startup budget.
async fn check_store(store: &Arc<StoreGuard>, budget: Duration) {
    let Err(error) = store.verify().await else {
        return;
    };
    tracing::warn!(
        error = format!("{error:#}"),
        "could not check the store identity yet; the API answers 503 until it is checked"
    );
    let store = store.clone();
    tokio::spawn(async move {
        let checked =
            retry::with_backoff("checking the store identity", budget, || store.verify()).await;
        if let Err(error) = checked {
            tracing::error!(
                error = format!("{error:#}"),
                "the store identity is still unchecked; each /readyz tries again"
            );
        }
    });
}

/// Every minute, forgets rate-limit buckets that are full again; stops with the application.
fn spawn_rate_limit_housekeeping(limits: std::sync::Weak<RateLimits>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(60));
        loop {
            interval.tick().await;
            let Some(limits) = limits.upgrade() else {
                return;
            };
            limits.forget_idle();
        }
    });
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
