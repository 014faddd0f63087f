//! Retrying start-up steps whose dependency may come up a few seconds after this process
//! (a database container still initialising, storage still booting). A database that
//! answered but refused (wrong password, TLS it does not accept or a certificate not
//! trusted) is not retried: waiting cannot change its answer, and the start fails at once
//! with the refusal's one-line cause.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::db::ConnectError;

/// First pause between attempts; doubled after each failure up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Runs `step` until it succeeds, fails for good, or `budget` has passed, logging each
/// failure.
pub async fn with_backoff<T, F, Fut>(what: &str, budget: Duration, mut step: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + budget;
    let mut pause = FIRST_PAUSE;
    loop {
        match step().await {
            Ok(value) => return Ok(value),
            Err(error) if is_permanent(&error) => return Err(error.context(what.to_owned())),
            Err(error) if Instant::now() + pause < deadline => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    retry_in_ms = pause.as_millis() as u64,
                    "{what} failed; retrying"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(error) => {
                return Err(error.context(format!("{what} (gave up after {}s)", budget.as_secs())));
            }
        }
    }
}

/// Whether `error` is the database refusing for a reason that retrying cannot change.
fn is_permanent(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<ConnectError>()
            .is_some_and(ConnectError::is_permanent)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_step_that_recovers_succeeds() {
        let attempts = AtomicU32::new(0);
        let result = with_backoff("step", Duration::from_secs(5), || async {
            if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                anyhow::bail!("not yet")
            }
            Ok(42)
        })
        .await;
        assert_eq!(result.unwrap(), 42);
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_database_that_refuses_for_good_is_not_retried() {
        let attempts = AtomicU32::new(0);
        let result: anyhow::Result<()> = with_backoff(
            "migrating the database",
            Duration::from_secs(30),
            || async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(ConnectError::for_tests("certificate not trusted (x)", true).into())
            },
        )
        .await;
        let error = format!("{:#}", result.unwrap_err());
        assert_eq!(
            error,
            "migrating the database: database: certificate not trusted (x)"
        );
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_database_that_does_not_answer_yet_is_retried() {
        let attempts = AtomicU32::new(0);
        let result = with_backoff("migrating the database", Duration::from_secs(5), || async {
            if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(ConnectError::for_tests("connection refused", false).into());
            }
            Ok(())
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_step_that_never_recovers_gives_up_within_the_budget() {
        let started = Instant::now();
        let result: anyhow::Result<()> =
            with_backoff("connecting", Duration::from_millis(500), || async {
                anyhow::bail!("refused")
            })
            .await;
        let error = format!("{:#}", result.unwrap_err());
        assert!(
            error.contains("connecting") && error.contains("refused"),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
