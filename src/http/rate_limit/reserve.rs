//! Tokens a replica took from a Redis bucket ahead of use: under heavy use one script call
//! takes several tokens (at most an eighth of what the bucket then holds, so a nearly empty
//! bucket is still shared one token at a time), and the next requests of the same key spend
//! them here without a round trip. Every token admitted was taken in Redis, so the cluster
//! never admits more than the limit; tokens a replica holds unused lapse after
//! [`HOLD_FOR`] (the cluster then admits slightly fewer).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most tokens one call takes.
pub const MOST_PER_CALL: u32 = 64;
/// How long taken tokens may wait for a request.
const HOLD_FOR: Duration = Duration::from_secs(1);

/// Taken tokens by bucket key.
#[derive(Default)]
pub struct Reserve {
    held: Mutex<HashMap<String, Held>>,
}

struct Held {
    tokens: u32,
    /// Tokens Redis had left when these were taken.
    left_in_redis: u32,
    until: Instant,
}

impl Reserve {
    /// Spends one held token of `key`; the tokens left (held here and in Redis when last
    /// seen), or `None` when none is held.
    pub fn spend(&self, key: &str) -> Option<u32> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let entry = held.get_mut(key)?;
        if entry.until < Instant::now() {
            held.remove(key);
            return None;
        }
        entry.tokens -= 1;
        let left = entry.tokens + entry.left_in_redis;
        if entry.tokens == 0 {
            held.remove(key);
        }
        Some(left)
    }

    /// Keeps `tokens` taken for `key` (Redis had `left_in_redis` after taking them); the
    /// tokens left to report.
    pub fn hold(&self, key: String, tokens: u32, left_in_redis: u32) -> u32 {
        if tokens == 0 {
            return left_in_redis;
        }
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Keys nobody spends any more would otherwise stay.
        if held.len() > 10_000 {
            held.retain(|_, entry| entry.until >= now);
        }
        let entry = held.entry(key).or_insert(Held {
            tokens: 0,
            left_in_redis,
            until: now + HOLD_FOR,
        });
        entry.tokens += tokens;
        entry.left_in_redis = left_in_redis;
        entry.until = now + HOLD_FOR;
        entry.tokens + left_in_redis
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_tokens_are_spent_one_by_one_then_gone() {
        let reserve = Reserve::default();
        assert_eq!(reserve.spend("k"), None);
        assert_eq!(reserve.hold("k".into(), 2, 10), 12);
        assert_eq!(reserve.spend("k"), Some(11));
        assert_eq!(reserve.spend("k"), Some(10));
        assert_eq!(reserve.spend("k"), None, "both spent");
        assert_eq!(reserve.spend("other"), None, "keys apart");
    }
}
