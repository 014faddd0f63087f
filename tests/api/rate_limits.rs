//! Token-bucket rate limits: 429 `rate_limited` with `Retry-After` once a bucket is empty,
//! one bucket per owner (per client IP when anonymous or refused), `X-Forwarded-For` believed
//! only from trusted proxies — the same answers with the buckets in memory and in Redis (each
//! test runs on both), and Redis over TLS.

use std::time::Duration;

use cloud_asset_uploader::config::{Bucket, OnRedisError, RateLimitBackend, Settings};
use reqwest::Response;
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::redis::RedisServer;
use crate::helpers::tokens::use_jwt;
use crate::helpers::{Backend, Caller, TestApp, assert_problem, header, spawn_app_with};

/// Where the buckets of the server under test live.
#[derive(Clone, Copy)]
enum Buckets {
    Memory,
    Redis,
}

/// Runs the test `$name(Buckets)` once with each backend of the buckets.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn in_memory() {
                super::$name(super::Buckets::Memory).await
            }

            #[tokio::test]
            async fn in_redis() {
                super::$name(super::Buckets::Redis).await
            }
        }
    };
}

/// A server on the local backend whose rate limits hold `burst` tokens (see [`limit_to`]) in
/// `buckets`, after `configure`; the Redis lives as long as the returned value.
async fn limited_app(
    buckets: Buckets,
    burst: u32,
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, Option<RedisServer>) {
    let redis = match buckets {
        Buckets::Memory => None,
        Buckets::Redis => Some(RedisServer::start().await),
    };
    let app = spawn_app_with(Backend::Local, |s| {
        configure(s);
        limit_to(s, burst);
        if let Some(redis) = &redis {
            s.rate_limit.backend = RateLimitBackend::Redis;
            s.rate_limit.redis.url = Some(SecretString::from(redis.url()));
        }
    })
    .await;
    (app, redis)
}

/// Rate limits on, both route groups holding `burst` tokens refilled at one a second.
fn limit_to(settings: &mut Settings, burst: u32) {
    settings.rate_limit.enabled = true;
    settings.rate_limit.issue = Bucket {
        per_second: 1,
        burst,
    };
    settings.rate_limit.read = Bucket {
        per_second: 1,
        burst,
    };
}

/// One `POST /api/upload` with a key of its own.
async fn upload(caller: &Caller<'_>) -> Response {
    let key = Uuid::new_v4().to_string();
    caller.request_upload(&json!({ "object_key": key })).await
}

/// Asserts a 429 `rate_limited`; returns its `Retry-After` in seconds.
async fn assert_rate_limited(response: Response, reason: &str) -> u64 {
    assert_eq!(response.status().as_u16(), 429, "{reason}");
    assert_eq!(header(&response, "ratelimit-remaining"), "0", "{reason}");
    let retry_after: u64 = header(&response, "retry-after")
        .parse()
        .expect("Retry-After seconds");
    let problem = assert_problem(response, 429, "rate_limited").await;
    assert_eq!(problem["retry_after"], retry_after, "{reason}: {problem}");
    retry_after
}

on_both_backends!(a_burst_beyond_the_limit_gets_429_with_retry_after_then_recovers);
async fn a_burst_beyond_the_limit_gets_429_with_retry_after_then_recovers(buckets: Buckets) {
    // Arrange
    let (app, _redis) = limited_app(buckets, 3, |_| {}).await;
    let client = app.with_headers(&[]);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let response = upload(&client).await;
        assert_eq!(response.status().as_u16(), 201);
        assert_eq!(header(&response, "ratelimit-limit"), "3");
        remaining.push(header(&response, "ratelimit-remaining"));
    }
    assert_eq!(remaining, ["2", "1", "0"]);

    // Act
    let limited = upload(&client).await;
    let retry_after = assert_rate_limited(limited, "the fourth request of a burst of 3").await;
    assert!(
        (1..=2).contains(&retry_after),
        "one token a second: {retry_after} s"
    );
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let recovered = upload(&client).await;

    // Assert
    assert_eq!(
        recovered.status().as_u16(),
        201,
        "a token came back after Retry-After"
    );
}

on_both_backends!(each_owner_draws_from_its_own_bucket);
async fn each_owner_draws_from_its_own_bucket(buckets: Buckets) {
    // Arrange
    let (app, _redis) = limited_app(buckets, 2, use_jwt).await;
    let (alice, bob) = (app.as_owner("alice"), app.as_owner("bob"));
    for _ in 0..2 {
        assert_eq!(upload(&alice).await.status().as_u16(), 201);
    }

    // Act
    let alices_third = upload(&alice).await;
    let bobs_first = upload(&bob).await;

    // Assert
    assert_rate_limited(alices_third, "alice spent her burst").await;
    assert_eq!(bobs_first.status().as_u16(), 201, "bob's bucket is full");
}

on_both_backends!(
    requests_with_refused_credentials_are_limited_by_client_ip_not_by_the_claimed_owner
);
async fn requests_with_refused_credentials_are_limited_by_client_ip_not_by_the_claimed_owner(
    buckets: Buckets,
) {
    // Arrange
    let (app, _redis) = limited_app(buckets, 2, use_jwt).await;
    let forger = app.with_bearer("forged.token.value");
    for _ in 0..2 {
        assert_eq!(upload(&forger).await.status().as_u16(), 401);
    }

    // Act
    let third_attempt = upload(&forger).await;
    let without_token = upload(&app.with_headers(&[])).await;
    let alice = upload(&app.as_owner("alice")).await;

    // Assert
    assert_rate_limited(third_attempt, "refused credentials spend the IP's tokens").await;
    assert_rate_limited(
        without_token,
        "the same client IP, still without credentials",
    )
    .await;
    assert_eq!(
        alice.status().as_u16(),
        201,
        "a valid owner has a bucket of its own"
    );
}

on_both_backends!(
    anonymous_clients_behind_an_untrusted_peer_share_its_bucket_whatever_they_forward
);
async fn anonymous_clients_behind_an_untrusted_peer_share_its_bucket_whatever_they_forward(
    buckets: Buckets,
) {
    // Arrange
    let (app, _redis) = limited_app(buckets, 1, |_| {}).await;
    let first = app.with_headers(&[("x-forwarded-for", "203.0.113.1")]);
    let second = app.with_headers(&[("x-forwarded-for", "203.0.113.2")]);
    assert_eq!(upload(&first).await.status().as_u16(), 201);

    // Act
    let response = upload(&second).await;

    // Assert
    assert_rate_limited(response, "127.0.0.1 is not a trusted proxy").await;
}

on_both_backends!(anonymous_clients_forwarded_by_a_trusted_proxy_get_a_bucket_each);
async fn anonymous_clients_forwarded_by_a_trusted_proxy_get_a_bucket_each(buckets: Buckets) {
    // Arrange
    let (app, _redis) = limited_app(buckets, 1, |s| {
        s.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let first = app.with_headers(&[("x-forwarded-for", "203.0.113.1")]);
    let second = app.with_headers(&[("x-forwarded-for", "198.51.100.7, 203.0.113.2")]);
    assert_eq!(upload(&first).await.status().as_u16(), 201);

    // Act
    let firsts_second = upload(&first).await;
    let seconds_first = upload(&second).await;
    let the_proxy_itself = upload(&app.with_headers(&[])).await;

    // Assert
    assert_rate_limited(firsts_second, "203.0.113.1 spent its token").await;
    assert_eq!(
        seconds_first.status().as_u16(),
        201,
        "203.0.113.2 has its own bucket"
    );
    assert_eq!(
        the_proxy_itself.status().as_u16(),
        201,
        "so does the proxy's own address"
    );
}

on_both_backends!(issuing_and_reading_draw_from_separate_buckets);
async fn issuing_and_reading_draw_from_separate_buckets(buckets: Buckets) {
    // Arrange
    let (app, _redis) = limited_app(buckets, 1, |_| {}).await;
    let client = app.with_headers(&[]);
    assert_eq!(upload(&client).await.status().as_u16(), 201);

    // Act
    let second_upload = upload(&client).await;
    let read = client.access(Uuid::new_v4()).await;

    // Assert
    assert_rate_limited(second_upload, "the issue bucket is empty").await;
    assert_problem(read, 404, "asset_not_found").await;
}

#[tokio::test]
async fn buckets_in_redis_over_tls_are_used_when_its_certificate_chains_to_the_root_cert() {
    // Arrange
    let redis = RedisServer::start_tls().await;
    let app = spawn_app_with(Backend::Local, |s| {
        limit_to(s, 2);
        s.rate_limit.backend = RateLimitBackend::Redis;
        s.rate_limit.redis.url = Some(SecretString::from(redis.url()));
        s.rate_limit.redis.root_cert = Some(redis.ca_file());
        s.rate_limit.redis.on_error = OnRedisError::Deny;
    })
    .await;
    let client = app.with_headers(&[]);
    let first = until_redis_answers(&client).await;

    // Act
    let second = upload(&client).await;
    let third = upload(&client).await;

    // Assert
    assert_eq!(header(&first, "ratelimit-remaining"), "1");
    assert_eq!(second.status().as_u16(), 201);
    assert_rate_limited(third, "the burst of 2 is spent, as counted in Redis").await;
}

#[tokio::test]
async fn a_rediss_server_whose_certificate_is_not_trusted_is_never_used() {
    // Arrange: the test CA is not among the machine's roots.
    let redis = RedisServer::start_tls().await;
    let app = spawn_app_with(Backend::Local, |s| {
        limit_to(s, 2);
        s.rate_limit.backend = RateLimitBackend::Redis;
        s.rate_limit.redis.url = Some(SecretString::from(redis.url()));
        s.rate_limit.redis.on_error = OnRedisError::Deny;
    })
    .await;

    // Act
    tokio::time::sleep(Duration::from_millis(500)).await;
    let response = upload(&app.with_headers(&[])).await;

    // Assert
    assert_problem(response, 503, "rate_limit_unavailable").await;
}

/// The first upload admitted once the server has connected to Redis (it connects in the
/// background; until then `on_error = "deny"` answers 503).
async fn until_redis_answers(client: &Caller<'_>) -> Response {
    let started = std::time::Instant::now();
    loop {
        let response = upload(client).await;
        if response.status().as_u16() != 503 {
            assert_eq!(response.status().as_u16(), 201);
            return response;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "Redis never used"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
