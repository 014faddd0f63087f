//! The buckets in Redis, shared by every replica: one GCRA script run atomically on the
//! server (`EVALSHA`, at most one round trip a request, Redis' own clock so replicas' clocks
//! need not agree), over one multiplexed connection that reconnects by itself. Under heavy
//! use a call takes several tokens at once ([`super::reserve`]).
//!
//! When Redis cannot answer in `command_timeout_ms`, the request gets what
//! `rate_limit.redis.on_error` says, Redis is left alone for a moment (so an outage costs
//! requests no waiting), the failure is counted and warned about at most every few seconds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use prometheus_client::metrics::counter::Counter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use super::reserve::{MOST_PER_CALL, Reserve};
use super::{RouteGroup, Verdict};
use crate::config::{Bucket, OnRedisError, RateLimitSettings};
use crate::metrics::Metrics;

/// GCRA in microseconds of Redis' clock. KEYS[1]: the bucket; ARGV[1]: microseconds between
/// tokens; ARGV[2]: the burst; ARGV[3]: the most tokens to take. Takes one token, or up to an
/// eighth of what the bucket holds when that is more (see [`super::reserve`]), and answers
/// `{tokens taken, tokens left, 0}`, or `{0, 0, microseconds until one token}`; the key
/// expires once its bucket is full again.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local most = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local available = math.floor((now + interval * burst - tat) / interval)
if available < 1 then
  return {0, 0, tat + interval - interval * burst - now}
end
local taken = math.max(1, math.min(most, math.floor(available / 8)))
local next_tat = tat + interval * taken
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000))
return {taken, available - taken, 0}
";

/// How long Redis is left alone after a failure before it is asked again.
const BACKOFF_AFTER_FAILURE: Duration = Duration::from_millis(500);
/// At most one warning about Redis in this long.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The buckets of both route groups in Redis.
pub struct RedisLimits {
    /// Set once the first connection succeeded; reconnections happen inside.
    connection: Arc<OnceCell<ConnectionManager>>,
    script: redis::Script,
    key_prefix: String,
    issue: Bucket,
    read: Bucket,
    command_timeout: Duration,
    outage: Arc<Outage>,
    /// Tokens taken ahead of use.
    reserve: Reserve,
}

impl RedisLimits {
    /// Connects to `rate_limit.redis.url`, waiting at most `connect_timeout_ms`: when Redis
    /// is up, limits apply from the first request; when it is not, the server starts anyway
    /// and keeps connecting in the background.
    pub async fn connect(settings: &RateLimitSettings, metrics: &Metrics) -> anyhow::Result<Self> {
        let redis = &settings.redis;
        let url = redis
            .url
            .as_ref()
            .context("rate_limit.redis.url is not set")?;
        // `rediss://` takes the process's rustls provider; this crate's is aws-lc-rs (an error
        // only means one is installed already).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = match &redis.root_cert {
            None => redis::Client::open(url.expose_secret()),
            Some(path) => {
                let pem = std::fs::read(path).with_context(|| {
                    format!("reading rate_limit.redis.root_cert {}", path.display())
                })?;
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                redis::Client::build_with_tls(url.expose_secret(), certificates)
            }
        }
        // The error can quote the URL, password included.
        .map_err(|error| {
            anyhow::anyhow!("rate_limit.redis.url is not usable: {:?}", error.kind())
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(redis.connect_timeout()))
            .set_response_timeout(Some(redis.command_timeout()))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let outage = Arc::new(Outage::new(
            redis.on_error,
            metrics.rate_limit_backend_errors(),
        ));
        let connection = Arc::new(OnceCell::new());
        let first = tokio::time::timeout(
            redis.connect_timeout(),
            ConnectionManager::new_with_config(client.clone(), config.clone()),
        )
        .await;
        match first {
            Ok(Ok(manager)) => {
                let _ = connection.set(manager);
                tracing::info!("rate limits: connected to Redis");
            }
            Ok(Err(error)) => outage.warn(&error.to_string()),
            Err(_) => outage.warn("no connection within rate_limit.redis.connect_timeout_ms"),
        }
        if connection.get().is_none() {
            spawn_first_connection(client, config, Arc::downgrade(&connection), outage.clone());
        }
        Ok(Self {
            connection,
            script: redis::Script::new(GCRA),
            key_prefix: redis.key_prefix.clone(),
            issue: settings.issue,
            read: settings.read,
            command_timeout: redis.command_timeout(),
            outage,
            reserve: Reserve::default(),
        })
    }

    /// Takes one token from `key`'s bucket of `group`: one held here, else from Redis.
    pub async fn check(&self, group: RouteGroup, key: &str) -> Verdict {
        let bucket = match group {
            RouteGroup::Issue => self.issue,
            RouteGroup::Read => self.read,
        };
        let redis_key = format!("{}{}:{key}", self.key_prefix, group.name());
        if let Some(remaining) = self.reserve.spend(&redis_key) {
            return Verdict::Allowed {
                limit: bucket.burst,
                remaining,
            };
        }
        let Some(connection) = self.connection.get() else {
            return self.outage.failed("not connected yet");
        };
        if self.outage.backing_off() {
            return self.outage.verdict();
        }
        let interval_micros = (1_000_000 / u64::from(bucket.per_second.max(1))).max(1);
        let mut connection = connection.clone();
        let mut invocation = self.script.key(&redis_key);
        invocation
            .arg(interval_micros)
            .arg(bucket.burst.max(1))
            .arg(MOST_PER_CALL);
        let answer = tokio::time::timeout(
            self.command_timeout,
            invocation.invoke_async::<(i64, i64, i64)>(&mut connection),
        )
        .await;
        let count = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        match answer {
            Ok(Ok((taken, left, wait))) => {
                self.outage.answered();
                if taken >= 1 {
                    let remaining = self.reserve.hold(redis_key, count(taken) - 1, count(left));
                    Verdict::Allowed {
                        limit: bucket.burst,
                        remaining,
                    }
                } else {
                    Verdict::Limited {
                        limit: bucket.burst,
                        retry_after: Duration::from_micros(u64::try_from(wait).unwrap_or(0)),
                    }
                }
            }
            Ok(Err(error)) => self.outage.failed(&error.to_string()),
            Err(_) => self
                .outage
                .failed("no answer within rate_limit.redis.command_timeout_ms"),
        }
    }
}

/// Connects until a first connection succeeds (the manager reconnects by itself after
/// that), or until the limits are dropped.
fn spawn_first_connection(
    client: redis::Client,
    config: ConnectionManagerConfig,
    cell: Weak<OnceCell<ConnectionManager>>,
    outage: Arc<Outage>,
) {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(100);
        loop {
            match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                Ok(manager) => {
                    if let Some(cell) = cell.upgrade() {
                        let _ = cell.set(manager);
                        tracing::info!("rate limits: connected to Redis");
                    }
                    return;
                }
                Err(error) => outage.warn(&error.to_string()),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            if cell.strong_count() == 0 {
                return;
            }
        }
    });
}

/// What happens while Redis cannot answer: the verdict `on_error` gives, a pause before
/// Redis is asked again, a counter and a throttled warning.
struct Outage {
    on_error: OnRedisError,
    /// `uploader_rate_limit_backend_errors_total`: requests Redis could not decide.
    errors: Counter,
    started: Instant,
    /// Milliseconds after `started` before which Redis is not asked.
    skip_until_ms: AtomicU64,
    /// Milliseconds after `started` of the last warning, plus one (0: never warned).
    warned_at_ms: AtomicU64,
    /// Failures since the last warning.
    unreported: AtomicU64,
    /// True from a failure until Redis answers again.
    down: AtomicBool,
}

impl Outage {
    fn new(on_error: OnRedisError, errors: Counter) -> Self {
        Self {
            on_error,
            errors,
            started: Instant::now(),
            skip_until_ms: AtomicU64::new(0),
            warned_at_ms: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
            down: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn backing_off(&self) -> bool {
        let backing_off = self.now_ms() < self.skip_until_ms.load(Ordering::Relaxed);
        if backing_off {
            self.errors.inc();
            self.unreported.fetch_add(1, Ordering::Relaxed);
        }
        backing_off
    }

    /// A request Redis could not decide: count it, back off, warn (throttled).
    fn failed(&self, reason: &str) -> Verdict {
        self.errors.inc();
        self.down.store(true, Ordering::Relaxed);
        let backoff = u64::try_from(BACKOFF_AFTER_FAILURE.as_millis()).unwrap_or(u64::MAX);
        self.skip_until_ms
            .store(self.now_ms() + backoff, Ordering::Relaxed);
        self.warn(reason);
        self.verdict()
    }

    fn verdict(&self) -> Verdict {
        match self.on_error {
            OnRedisError::Allow => Verdict::Unlimited,
            OnRedisError::Deny => Verdict::Unavailable,
        }
    }

    /// Warns, unless a warning went out less than [`WARN_EVERY`] ago.
    fn warn(&self, reason: &str) {
        let unreported = self.unreported.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.now_ms() + 1;
        let last = self.warned_at_ms.load(Ordering::Relaxed);
        let every = u64::try_from(WARN_EVERY.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now < last + every {
            return;
        }
        if self
            .warned_at_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.unreported.fetch_sub(unreported, Ordering::Relaxed);
            let requests = match self.on_error {
                OnRedisError::Allow => "admitted without a limit",
                OnRedisError::Deny => "refused with 503",
            };
            tracing::warn!(
                reason,
                failures = unreported,
                "rate limits: Redis cannot answer; requests are {requests} until it does"
            );
        }
    }

    /// Redis answered: say so once after an outage.
    fn answered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("rate limits: Redis answers again");
        }
    }
}
