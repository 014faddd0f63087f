//! Retrying start-up steps whose dependency may come up a few seconds after this process
//! (a database container still initialising, storage still booting).

use std::future::Future;
use std::time::{Duration, Instant};

/// First pause between attempts; doubled after each failure up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Runs `step` until it succeeds or `budget` has passed, logging each failure.
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
