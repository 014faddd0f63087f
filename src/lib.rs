//! Cloud Asset Uploader: issues short-lived signed URLs so clients move files straight to
//! object storage, records each asset in Postgres, and hands out download URLs only for
//! uploads that really happened.
//!
//! Map of the crate:
//! - [`config`]: layered settings (defaults, `config/*.toml`, environment).
//! - [`startup`]: [`startup::Application`] builds the server from settings and runs it.
//! - [`http`]: routes, request/response types, middleware, OpenAPI.
//! - [`domain`]: validated types (`ObjectKey`, `AssetId`, `AssetStatus`, …).
//! - [`db`]: the Postgres pool, migrations and `AssetRepository` (all SQL lives there).
//! - [`storage`]: the `Storage` trait with its S3 and local backends.
//! - [`error`]: the HTTP error type and its problem+json rendering.
//! - [`lifecycle`]: the sweeper of abandoned uploads and orphaned objects.
//! - [`events`]: asset events (recorded with each change) and their webhook dispatcher.
//! - [`metrics`]: Prometheus metrics, served at `GET /metrics`.
//! - [`state`]: the shared `AppState`; [`telemetry`]: logging; [`healthcheck`]: the probe
//!   behind the `healthcheck` subcommand.

pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod healthcheck;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
