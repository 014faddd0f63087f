//! Two servers on one database and one storage, as two replicas behind a load balancer, with
//! requests spread over both: rate limits on Redis hold for the pair (and in memory, each
//! replica has its own), a Redis outage fails no request, quotas and one-key races hold
//! through Postgres, background sweeps and migrations happen once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use cloud_asset_uploader::config::{
    Bucket, OnRedisError, RateLimitBackend, Settings, StorageBackend,
};
use cloud_asset_uploader::startup::Application;
use futures::future::join_all;
use reqwest::Response;
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::redis::RedisServer;
use crate::helpers::{
    Backend, TestApp, assert_problem, header, new_empty_database, spawn_replicas,
};

/// Rate limits on, in `redis`, both groups holding `burst` tokens refilled at one a second.
fn limit_in_redis(settings: &mut Settings, redis: &RedisServer, burst: u32) {
    limit_to(settings, burst);
    settings.rate_limit.backend = RateLimitBackend::Redis;
    settings.rate_limit.redis.url = Some(SecretString::from(redis.url()));
}

fn limit_to(settings: &mut Settings, burst: u32) {
    settings.rate_limit.enabled = true;
    let bucket = Bucket {
        per_second: 1,
        burst,
    };
    settings.rate_limit.issue = bucket;
    settings.rate_limit.read = bucket;
}

/// One `POST /api/upload` with a key of its own.
async fn upload(app: &TestApp) -> Response {
    app.request_upload(&json!({ "object_key": Uuid::new_v4().to_string() }))
        .await
}

/// Sends `count` uploads one after another, alternating between the replicas; returns the
/// statuses and the `RateLimit-Remaining` of each admitted one.
async fn alternate(apps: [&TestApp; 2], count: usize) -> (Vec<u16>, Vec<String>) {
    let (mut statuses, mut remaining) = (Vec::new(), Vec::new());
    for n in 0..count {
        let response = upload(apps[n % 2]).await;
        let status = response.status().as_u16();
        if status == 201 {
            remaining.push(header(&response, "ratelimit-remaining"));
        }
        statuses.push(status);
    }
    (statuses, remaining)
}

fn count(statuses: &[u16], wanted: u16) -> usize {
    statuses.iter().filter(|status| **status == wanted).count()
}

/// Waits (at most `within`) until an upload through either replica is limited again.
async fn until_limited(apps: [&TestApp; 2], within: Duration) -> Duration {
    let started = Instant::now();
    for n in 0.. {
        let status = upload(apps[n % 2]).await.status().as_u16();
        assert!(matches!(status, 201 | 429), "only 201 or 429, got {status}");
        if status == 429 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "limits did not return within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!()
}

#[tokio::test]
async fn a_redis_rate_limit_admits_one_burst_across_both_replicas() {
    // Arrange
    let redis = RedisServer::start().await;
    let (a, b) = spawn_replicas(Backend::Local, |s| limit_in_redis(s, &redis, 6)).await;

    // Act
    let started = Instant::now();
    let (statuses, remaining) = alternate([&a, &b], 20).await;
    let refilled = started.elapsed().as_secs() as usize + 1;

    // Assert
    let admitted = count(&statuses, 201);
    assert!(
        (6..=6 + refilled).contains(&admitted),
        "one burst of 6 (plus {refilled} refilled) for both, got {admitted}: {statuses:?}"
    );
    assert_eq!(admitted + count(&statuses, 429), 20, "{statuses:?}");
    assert_eq!(
        &remaining[..6],
        ["5", "4", "3", "2", "1", "0"],
        "each replica sees the other's requests"
    );
}

#[tokio::test]
async fn under_heavy_use_replicas_take_tokens_in_batches_and_together_never_exceed_the_burst() {
    // Arrange: a bucket far larger than one request.
    let redis = RedisServer::start().await;
    let (a, b) = spawn_replicas(Backend::Local, |s| limit_in_redis(s, &redis, 300)).await;

    // Act
    let started = Instant::now();
    let (first, _) = alternate([&a, &b], 200).await;
    let calls = redis.calls("evalsha").await + redis.calls("eval").await;
    let (then, _) = alternate([&a, &b], 200).await;
    let refilled = started.elapsed().as_secs() as usize + 1;

    // Assert
    assert_eq!(
        count(&first, 201),
        200,
        "a bucket of 300 admits the first 200"
    );
    assert!(
        calls * 3 < 200,
        "{calls} Redis calls for 200 admitted requests"
    );
    let admitted = 200 + count(&then, 201);
    assert!(
        admitted <= 300 + refilled,
        "never more than the burst (plus {refilled} refilled): {admitted}"
    );
    assert!(
        admitted >= 300 - 2 * 37,
        "at most what each replica took last lapses unused: {admitted}"
    );
}

#[tokio::test]
async fn with_the_memory_backend_each_replica_admits_its_own_burst() {
    // Arrange
    let (a, b) = spawn_replicas(Backend::Local, |s| limit_to(s, 6)).await;

    // Act
    let (statuses, _) = alternate([&a, &b], 20).await;

    // Assert: documented as such: N replicas allow N times the rate.
    let admitted = count(&statuses, 201);
    assert!(
        admitted >= 12,
        "6 on each replica, got {admitted}: {statuses:?}"
    );
}

#[tokio::test]
async fn a_redis_outage_under_load_fails_no_request_and_limits_return_after_a_restart() {
    // Arrange
    let mut redis = RedisServer::start().await;
    let (a, b) = spawn_replicas(Backend::Local, |s| limit_in_redis(s, &redis, 5)).await;
    let (statuses, _) = alternate([&a, &b], 10).await;
    assert_eq!(
        count(&statuses, 429),
        5,
        "limited before the outage: {statuses:?}"
    );

    // Act: a load on both replicas while Redis is stopped, then started again (empty).
    let load = async {
        let mut during = Vec::new();
        let until = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < until {
            let burst = join_all([&a, &b, &a, &b].map(upload)).await;
            during.extend(burst.iter().map(|r| r.status().as_u16()));
        }
        during
    };
    let outage = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        redis.stop();
    };
    let (during, ()) = tokio::join!(load, outage);
    redis.restart().await;
    let back_within = until_limited([&a, &b], Duration::from_secs(10)).await;

    // Assert
    let failed: Vec<_> = during.iter().filter(|s| !matches!(s, 201 | 429)).collect();
    assert!(
        failed.is_empty(),
        "no request fails because Redis is down: {failed:?}"
    );
    assert!(
        count(&during, 201) > 5,
        "with on_error = allow, requests are admitted while Redis is down: {during:?}"
    );
    assert!(
        back_within < Duration::from_secs(5),
        "limits back after {back_within:?}"
    );
    let metrics = a.get("/metrics").await.text().await.unwrap();
    let errors = metrics
        .lines()
        .find_map(|line| line.strip_prefix("uploader_rate_limit_backend_errors_total "))
        .and_then(|value| value.parse::<f64>().ok())
        .expect("the error counter is exported");
    assert!(errors > 0.0, "failures are counted: {errors}");
}

#[tokio::test]
async fn with_on_error_deny_requests_get_503_while_redis_is_down_and_a_late_redis_is_used() {
    // Arrange: Redis is down before the replicas start.
    let mut redis = RedisServer::start().await;
    redis.stop();
    let (a, b) = spawn_replicas(Backend::Local, |s| {
        limit_in_redis(s, &redis, 3);
        s.rate_limit.redis.on_error = OnRedisError::Deny;
    })
    .await;

    // Act
    let refused = upload(&a).await;
    let retry_after = header(&refused, "retry-after");
    redis.restart().await;
    let started = Instant::now();
    while upload(&b).await.status().as_u16() == 503 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "Redis never used"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (statuses, _) = alternate([&a, &b], 6).await;

    // Assert
    assert_eq!(retry_after, "1");
    assert_problem(refused, 503, "rate_limit_unavailable").await;
    assert!(
        count(&statuses, 429) >= 3,
        "limits apply once Redis answers: {statuses:?}"
    );
}

#[tokio::test]
async fn quotas_never_overshoot_across_two_replicas() {
    // Arrange
    let (a, b) = spawn_replicas(Backend::Local, |s| s.uploads.max_pending_uploads = Some(5)).await;

    // Act
    let requests = (0..30).map(|n| upload(if n % 2 == 0 { &a } else { &b }));
    let statuses: Vec<u16> = join_all(requests)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();

    // Assert
    assert_eq!(count(&statuses, 201), 5, "{statuses:?}");
    assert_eq!(count(&statuses, 403), 25, "{statuses:?}");
    assert_eq!(a.assets_of("anonymous", "pending").await.0, 5);
}

#[tokio::test]
async fn a_hundred_concurrent_requests_for_one_key_across_two_replicas_yield_one_asset() {
    // Arrange
    let (a, b) = spawn_replicas(Backend::S3, |_| {}).await;
    let body = json!({ "object_key": "reports/2026.pdf", "content_length": 3 });

    // Act
    let requests = (0..100).map(|n| {
        let app = if n % 2 == 0 { &a } else { &b };
        app.request_upload(&body)
    });
    let responses = join_all(requests).await;

    // Assert
    let mut statuses = Vec::new();
    let mut ids = HashSet::new();
    for response in responses {
        statuses.push(response.status().as_u16());
        let answer: Value = response.json().await.unwrap();
        ids.insert(answer["asset_id"].as_str().map(str::to_owned));
    }
    assert_eq!(count(&statuses, 201), 1, "one creates: {statuses:?}");
    assert_eq!(
        count(&statuses, 200),
        99,
        "the others get it again: {statuses:?}"
    );
    assert_eq!(ids.len(), 1, "one asset: {ids:?}");
    let rows: i64 = a
        .database()
        .await
        .query_one(
            "SELECT count(*) FROM assets WHERE object_key = 'reports/2026.pdf'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn both_replicas_sweepers_remove_each_expired_asset_once() {
    // Arrange
    let (a, b) = spawn_replicas(Backend::S3, |s| {
        s.lifecycle.sweeper_enabled = true;
        s.lifecycle.sweep_interval = Duration::from_secs(1);
        s.lifecycle.pending_grace = Duration::ZERO;
        s.lifecycle.sweep_batch_size = 2;
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..12 {
        let app = if n % 2 == 0 { &a } else { &b };
        ids.push(
            app.new_upload(&json!({ "object_key": format!("gone/{n}") }))
                .await
                .asset_id,
        );
    }
    let database = a.database().await;
    database
        .execute(
            "UPDATE assets SET upload_expires_at = now() - interval '1 minute'",
            &[],
        )
        .await
        .unwrap();

    // Act
    let started = Instant::now();
    loop {
        let left: i64 = database
            .query_one("SELECT count(*) FROM assets", &[])
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{left} never swept"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Assert
    let swept = swept_total(&a).await + swept_total(&b).await;
    assert_eq!(swept, 12.0, "each asset is swept once, by one of the two");
}

async fn swept_total(app: &TestApp) -> f64 {
    let metrics = app.get("/metrics").await.text().await.unwrap();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("uploader_assets_swept_total "))
        .and_then(|value| value.parse().ok())
        .expect("the sweep counter is exported")
}

#[tokio::test]
async fn migrations_started_by_two_replicas_at_once_apply_once() {
    // Arrange: an empty database, both replicas migrating on start.
    let url = new_empty_database().await;
    let root = std::env::temp_dir()
        .join("cau-tests")
        .join(Uuid::new_v4().simple().to_string());
    let settings = |_: ()| {
        let mut settings = Settings {
            profile: "test".into(),
            ..Settings::default()
        };
        settings.server.bind = ([127, 0, 0, 1], 0).into();
        settings.database.url = Some(SecretString::from(url.clone()));
        settings.database.migrate_on_start = true;
        settings.database.connect_timeout_secs = 30;
        settings.storage.backend = StorageBackend::Local;
        settings.storage.local.root = root.clone();
        settings.storage.local.signing_key = Some(SecretString::from("k".repeat(32)));
        settings.storage.adopt_store = true;
        settings
    };

    // Act
    let (first, second) = tokio::join!(
        Application::build(settings(())),
        Application::build(settings(()))
    );

    // Assert
    first.expect("the first replica starts");
    second.expect("the second replica starts");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT version, count(*) FROM refinery_schema_history GROUP BY version",
            &[],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty(), "migrations were applied");
    for row in rows {
        let (version, times): (i32, i64) = (row.get(0), row.get(1));
        assert_eq!(times, 1, "migration V{version} applied once");
    }
    let _ = std::fs::remove_dir_all(&root);
}
