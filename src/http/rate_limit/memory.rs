//! The buckets in this process's memory, with governor's GCRA: each replica allows the
//! configured rate on its own.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::{RouteGroup, Verdict};
use crate::config::{Bucket, RateLimitSettings};

type KeyedLimiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// One keyed bucket per route group.
pub struct MemoryLimits {
    issue: (KeyedLimiter, u32),
    read: (KeyedLimiter, u32),
}

impl MemoryLimits {
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self {
            issue: limiter(settings.issue),
            read: limiter(settings.read),
        }
    }

    /// Takes one token from `key`'s bucket of `group`.
    pub fn check(&self, group: RouteGroup, key: String) -> Verdict {
        let (limiter, limit) = match group {
            RouteGroup::Issue => &self.issue,
            RouteGroup::Read => &self.read,
        };
        match limiter.check_key(&key) {
            Ok(snapshot) => Verdict::Allowed {
                limit: *limit,
                remaining: snapshot.remaining_burst_capacity(),
            },
            Err(not_until) => Verdict::Limited {
                limit: *limit,
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            },
        }
    }

    /// Forgets buckets that are full again, so memory follows active clients only.
    pub fn forget_idle(&self) {
        self.issue.0.retain_recent();
        self.read.0.retain_recent();
    }
}

fn limiter(bucket: Bucket) -> (KeyedLimiter, u32) {
    let per_second = NonZeroU32::new(bucket.per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(bucket.burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::per_second(per_second).allow_burst(burst);
    (
        RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
        burst.get(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(burst: u32) -> MemoryLimits {
        MemoryLimits::new(&RateLimitSettings {
            issue: Bucket {
                per_second: 1,
                burst,
            },
            read: Bucket {
                per_second: 1,
                burst: 100,
            },
            ..RateLimitSettings::default()
        })
    }

    #[test]
    fn a_burst_is_allowed_then_limited_with_a_retry_delay() {
        let limits = limits(3);
        for remaining in [2, 1, 0] {
            assert_eq!(
                limits.check(RouteGroup::Issue, "a".into()),
                Verdict::Allowed {
                    limit: 3,
                    remaining
                }
            );
        }
        match limits.check(RouteGroup::Issue, "a".into()) {
            Verdict::Limited {
                limit: 3,
                retry_after,
            } => assert!(retry_after <= Duration::from_secs(1)),
            other => panic!("expected a limit, got {other:?}"),
        }
    }

    #[test]
    fn keys_and_groups_have_their_own_buckets() {
        let limits = limits(1);
        assert!(matches!(
            limits.check(RouteGroup::Issue, "a".into()),
            Verdict::Allowed { .. }
        ));
        assert!(matches!(
            limits.check(RouteGroup::Issue, "a".into()),
            Verdict::Limited { .. }
        ));
        assert!(
            matches!(
                limits.check(RouteGroup::Issue, "b".into()),
                Verdict::Allowed { .. }
            ),
            "another key"
        );
        assert!(
            matches!(
                limits.check(RouteGroup::Read, "a".into()),
                Verdict::Allowed { .. }
            ),
            "another group"
        );
    }
}
