//! The `cloud-asset-uploader` command: `serve` (the default), `migrate`, `sweep`, `events`
//! and `healthcheck`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cloud_asset_uploader::config::Settings;
use cloud_asset_uploader::events::{Subscriptions, cli::EventsCommand};
use cloud_asset_uploader::lifecycle::{Orphan, Sweeper};
use cloud_asset_uploader::startup::{Application, shutdown_signal};
use cloud_asset_uploader::storage::identity::{StoreGuard, Verdict};
use cloud_asset_uploader::{db, healthcheck, storage, telemetry};

/// mimalloc rather than the system allocator: a request makes a few hundred small, short-lived
/// allocations, and glibc's malloc took a tenth of the server's CPU under load (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Issues short-lived signed URLs for uploading assets straight to object storage (S3,
/// MinIO or local disk), tracks them in Postgres, and signs downloads of completed uploads.
///
/// Configuration: built-in defaults (for the profiles development and production), then
/// config/default.toml and config/<UPLOADER_PROFILE>.toml when they exist, the --config file,
/// then UPLOADER_<SECTION>__<KEY> environment variables (see the README).
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// An extra TOML configuration file, applied over config/*.toml.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Directory holding default.toml and the profile files [default: ./config, skipped when
    /// absent; a directory named here must exist].
    #[arg(long, global = true, value_name = "DIR", env = "UPLOADER_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default): migrates the database first when
    /// database.migrate_on_start is true, and stops gracefully on SIGTERM or Ctrl-C.
    Serve,
    /// Apply pending database migrations, print each one applied, and exit.
    Migrate,
    /// Remove pending uploads whose URL expired more than lifecycle.pending_grace ago, with
    /// their objects, once (for a cron job; the server also sweeps on its own), and print them.
    /// Refuses to run against a store other than the one the database records.
    Sweep {
        /// Also delete objects under storage.key_prefix that no asset refers to and that are
        /// older than lifecycle.pending_grace (leftovers of crashes).
        #[arg(long)]
        orphans: bool,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// List webhook deliveries, or make failed ones due again (the servers deliver them).
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Exit 0 when the server configured by server.bind answers GET /healthz with 200
    /// (for container health checks; needs no curl).
    Healthcheck,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config_dir.as_deref(), cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    // The health probe runs every few seconds; its only output is its exit code and errors.
    // `events` prints a table that log lines would break up.
    let logs = !matches!(command, Command::Healthcheck | Command::Events { .. });
    let _log_writer = logs.then(|| telemetry::init(&settings.log));
    let result = match command {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::Healthcheck => probe(settings).await,
        Command::Sweep { orphans, dry_run } => sweep(settings, orphans, dry_run).await,
        Command::Events { command } => cloud_asset_uploader::events::cli::run(&settings, command)
            .await
            .map(|text| print!("{text}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if logs => {
            tracing::error!(error = format!("{error:#}"), "stopped");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting");
    telemetry::log_effective_settings(&settings);
    Application::build(settings)
        .await?
        .run_until_stopped(shutdown_signal())
        .await
}

async fn probe(settings: Settings) -> anyhow::Result<()> {
    healthcheck::check(healthcheck::probe_address(settings.server.bind)).await
}

async fn sweep(settings: Settings, orphans: bool, dry_run: bool) -> anyhow::Result<()> {
    let pool = db::connect_lazy(&settings.database)?;
    let public_url = settings.server.public_url_or(settings.server.bind);
    let storage = storage::from_settings(&settings, &public_url).await?;
    // In another store every object looks missing and every object unreferenced. The check
    // follows the server's rules but never adopts: that is for a server start to do.
    let store = StoreGuard::new(storage.clone(), pool.clone(), false);
    if let Verdict::Mismatch { recorded, found } = store.verify().await? {
        anyhow::bail!("refusing to sweep: {}", store.explain(recorded, found));
    }
    let assets = db::AssetRepository::new(pool)
        .with_subscriptions(Subscriptions::from_settings(&settings.webhooks));
    let sweeper = Sweeper::new(assets, storage, &settings);
    let verb = if dry_run { "would remove" } else { "removed" };
    // Each key is printed as its batch goes, not gathered first.
    let sweep = sweeper
        .sweep_expired(dry_run, |key| println!("{verb} abandoned upload {key}"))
        .await?;
    if sweep.skipped {
        println!("another sweeper is running; nothing done");
    }
    if orphans {
        sweeper
            .sweep_orphans(dry_run, |orphan| match orphan {
                Orphan::Object(key) => println!("{verb} orphaned object {key}"),
                Orphan::Upload(id) => println!("{verb} stale multipart upload {id}"),
                Orphan::WorkingFile(path) => println!("{verb} leftover working file {path}"),
            })
            .await?;
    }
    Ok(())
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let pool = db::connect_lazy(&settings.database)?;
    let applied = db::migrate(&pool).await?;
    if applied.is_empty() {
        println!("the database schema is up to date");
    }
    for migration in applied {
        println!("applied {migration}");
    }
    Ok(())
}
