//! What the fault tests share: their containers, the server process, the load and the final
//! check of every completed asset.

pub mod containers;
pub mod load;
pub mod server;
pub mod verify;

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Taken by every test for its whole run: each starts two containers and a 16-worker load,
/// which on a small machine would otherwise starve each other's timings.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// The bytes uploaded under `object_key`: 1 to 48 KiB derived from the key, so any stored
/// object can be checked against what it must hold without keeping a copy.
pub fn payload(object_key: &str) -> Vec<u8> {
    let seed = Sha256::digest(object_key.as_bytes());
    let len = 1024 + usize::from(u16::from_be_bytes([seed[0], seed[1]])) % (47 * 1024);
    (0..len).map(|i| seed[i % 32] ^ (i / 32) as u8).collect()
}

/// Polls `ready` every 100 ms until it is true; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut ready: F) -> Instant
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if ready().await {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
