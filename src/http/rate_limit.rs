//! Token-bucket rate limits per route group, keyed by owner (or by client IP for anonymous
//! and unauthenticated requests), with GCRA buckets in this process ([`memory`]) or shared by
//! every replica in Redis ([`redis`]). Both give the same answers for the same settings.

mod memory;
mod redis;
mod reserve;

use std::time::Duration;

use crate::config::{RateLimitBackend, RateLimitSettings};
use crate::metrics::Metrics;

pub use memory::MemoryLimits;
pub use redis::RedisLimits;

/// Which bucket a route draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteGroup {
    /// Requests that issue upload URLs or change state.
    Issue,
    /// Requests that read (download URLs).
    Read,
}

impl RouteGroup {
    fn name(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Read => "read",
        }
    }
}

/// The outcome of drawing one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed {
        limit: u32,
        remaining: u32,
    },
    Limited {
        limit: u32,
        retry_after: Duration,
    },
    /// The shared buckets cannot be read and `rate_limit.redis.on_error` is `allow`.
    Unlimited,
    /// The shared buckets cannot be read and `rate_limit.redis.on_error` is `deny`.
    Unavailable,
}

/// The buckets of every route group, wherever they live.
pub enum RateLimits {
    Memory(MemoryLimits),
    Redis(RedisLimits),
}

impl RateLimits {
    /// The limits of `settings`, or `None` when rate limiting is off. A Redis that does not
    /// answer at start is connected in the background: until it answers, requests get what
    /// `on_error` says.
    pub async fn from_settings(
        settings: &RateLimitSettings,
        metrics: &Metrics,
    ) -> anyhow::Result<Option<Self>> {
        if !settings.enabled {
            return Ok(None);
        }
        Ok(Some(match settings.backend {
            RateLimitBackend::Memory => Self::Memory(MemoryLimits::new(settings)),
            RateLimitBackend::Redis => Self::Redis(RedisLimits::connect(settings, metrics).await?),
        }))
    }

    /// Takes one token from `key`'s bucket of `group`.
    pub async fn check(&self, group: RouteGroup, key: String) -> Verdict {
        match self {
            Self::Memory(limits) => limits.check(group, key),
            Self::Redis(limits) => limits.check(group, &key).await,
        }
    }

    /// Forgets buckets that are full again, so memory follows active clients only (Redis
    /// expires its keys by itself).
    pub fn forget_idle(&self) {
        if let Self::Memory(limits) = self {
            limits.forget_idle();
        }
    }
}
