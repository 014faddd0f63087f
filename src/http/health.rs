//! `GET /healthz` (the process is alive) and `GET /readyz` (its dependencies answer).

use std::collections::BTreeMap;
use std::time::Duration;

use salvo::oapi::{ToSchema, endpoint};
use salvo::prelude::Json;
use salvo::{Depot, Response};
use serde::Serialize;
use tokio::time::error::Elapsed;

use crate::db;
use crate::error::{AppError, ProblemDetails};
use crate::state::AppState;
use crate::storage::identity::StoreStatus;

/// How long each readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The result of a health or readiness check.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = HealthReport))]
struct HealthReport {
    /// `ok` or `ready`.
    status: String,
    /// Each dependency checked and its state (`ok`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    checks: BTreeMap<String, String>,
}

/// Liveness: answers as long as the process serves requests; touches no dependency.
#[endpoint(
    tags("operations"),
    operation_id = "liveness",
    responses((status_code = 200, description = "Alive", body = HealthReport))
)]
pub async fn healthz() -> Json<HealthReport> {
    Json(HealthReport {
        status: "ok".into(),
        checks: BTreeMap::new(),
    })
}

/// Readiness: the database and storage each answer within two seconds, and storage is the
/// store the database records (its marker is re-read each time).
#[endpoint(
    tags("operations"),
    operation_id = "readiness",
    responses(
        (status_code = 200, description = "Ready to serve", body = HealthReport),
        (status_code = 503, description = "A dependency failed (`not_ready`); `checks` names it", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn readyz(depot: &mut Depot, res: &mut Response) -> Result<(), AppError> {
    let state = AppState::from_depot(depot)?;
    let (database, storage, identity) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, db::ping(&state.pool)),
        tokio::time::timeout(CHECK_TIMEOUT, state.storage.check_ready()),
        tokio::time::timeout(CHECK_TIMEOUT, state.store.recheck()),
    );
    let database = verdict(
        "database",
        database.map(|r| r.map_err(|e| crate::error::error_chain(&e))),
    );
    let storage = verdict(
        "storage",
        storage.map(|r| r.map_err(|e| crate::error::error_chain(&e))),
    );
    let storage = with_identity(storage, identity);
    let mut checks = BTreeMap::from([
        ("database".to_owned(), database),
        ("storage".to_owned(), storage),
    ]);
    if state.draining.load(std::sync::atomic::Ordering::Acquire) {
        checks.insert("server".to_owned(), "shutting down".to_owned());
    }
    if checks.values().all(|v| v == "ok") {
        res.render(Json(HealthReport {
            status: "ready".into(),
            checks,
        }));
    } else {
        AppError::NotReady { checks }.to_problem().render(res);
    }
    Ok(())
}

/// `ok`, or what failed. Details go to the log, not to whoever can reach this unauthenticated
/// route.
fn verdict(name: &str, result: Result<Result<(), String>, Elapsed>) -> String {
    match result {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(error)) => {
            tracing::warn!(dependency = name, %error, "readiness check failed");
            "unavailable".to_owned()
        }
        Err(_) => {
            tracing::warn!(dependency = name, "readiness check timed out");
            "timed out".to_owned()
        }
    }
}

/// The storage verdict, given what the store identity check found: `wrong store` comes
/// first (the check logged the paths and ids), then storage's own failure.
fn with_identity(
    storage: String,
    identity: Result<anyhow::Result<StoreStatus>, Elapsed>,
) -> String {
    match identity {
        Ok(Ok(StoreStatus::WrongStore)) => "wrong store".to_owned(),
        _ if storage != "ok" => storage,
        Ok(Ok(StoreStatus::Verified)) => storage,
        Ok(Ok(StoreStatus::Unverified)) => "unverified".to_owned(),
        failed => verdict(
            "store identity",
            failed.map(|r| r.map(|_| ()).map_err(|e| format!("{e:#}"))),
        ),
    }
}
