//! Delivery: retries keep the event's `webhook-id`, deliveries survive a restart, two
//! replicas deliver each event once, private targets are refused unless allowed, and the
//! `events` command lists and retries deliveries.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::helpers::receiver::{Receiver, fast_webhooks};
use crate::helpers::{Backend, TestApp, spawn_app_with, spawn_replicas};

/// `(status, attempts, last_error)` of every delivery, oldest first.
async fn deliveries(app: &TestApp) -> Vec<(String, i32, Option<String>)> {
    app.database()
        .await
        .query(
            "SELECT status, attempts, last_error FROM event_deliveries ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

/// Waits (at most 20 s) until every delivery's status is `status`; returns them.
async fn wait_for_status(app: &TestApp, status: &str) -> Vec<(String, i32, Option<String>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = deliveries(app).await;
        if !rows.is_empty() && rows.iter().all(|(s, ..)| s == status) {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries never all became {status}: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn issue(app: &TestApp, key: &str) -> Uuid {
    app.new_upload(&json!({ "object_key": key })).await.asset_id
}

/// A server delivering to `receiver` that gives a delivery up after `max_attempts`.
async fn app_giving_up_after(receiver: &Receiver, max_attempts: u32) -> TestApp {
    spawn_app_with(Backend::Local, |s| {
        receiver.configure(s);
        s.webhooks.max_attempts = max_attempts;
    })
    .await
}

/// A server delivering to `receiver` whose dispatcher moves and claims once at start, then
/// sleeps (for an hour): what is recorded after that stays where it is, as it does when a
/// server stops right after a change.
async fn app_whose_dispatcher_ran_once(receiver: &Receiver) -> TestApp {
    let app = spawn_app_with(Backend::Local, |s| {
        receiver.configure(s);
        s.webhooks.poll_interval = Duration::from_secs(3600);
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    app
}

#[tokio::test]
async fn a_receiver_failing_the_first_attempts_gets_the_event_with_the_same_webhook_id() {
    let receiver = Receiver::start(3).await;
    let app = spawn_app_with(Backend::Local, |s| receiver.configure(s)).await;

    let asset_id = issue(&app, "retried.bin").await;

    let delivered = receiver.wait_for_delivered(1).await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4, "three 500s, then the 204: {requests:#?}");
    assert!(
        requests
            .iter()
            .all(|r| r.id == delivered[0].id && r.verified)
    );
    assert_eq!(delivered[0].asset_id(), asset_id.to_string());
    let rows = wait_for_status(&app, "delivered").await;
    assert_eq!(rows[0].1, 4, "attempts counted: {rows:?}");
}

#[tokio::test]
async fn after_max_attempts_a_delivery_is_failed_and_kept() {
    let receiver = Receiver::start(0).await;
    receiver.set_failing(true);
    let app = app_giving_up_after(&receiver, 2).await;

    issue(&app, "doomed.bin").await;

    let rows = wait_for_status(&app, "failed").await;
    assert_eq!(rows[0].1, 2);
    assert!(
        rows[0].2.as_deref().unwrap().contains("HTTP 500"),
        "{rows:?}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.requests().len(), 2, "no attempt after giving up");
}

#[tokio::test]
async fn finished_deliveries_and_their_events_are_pruned_after_the_retention() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(Backend::Local, |s| {
        receiver.configure(s);
        s.webhooks.retention = Duration::from_millis(1);
    })
    .await;

    issue(&app, "pruned.bin").await;
    receiver.wait_for_delivered(1).await;

    // Housekeeping runs every 5 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left: i64 = app
            .database()
            .await
            .query_one(
                "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM event_deliveries) \
                     + (SELECT count(*) FROM event_intake)",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} rows never pruned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let receiver = Receiver::start(0).await;
    receiver.set_redirecting(true);
    let app = app_giving_up_after(&receiver, 1).await;

    issue(&app, "redirected.bin").await;

    let rows = wait_for_status(&app, "failed").await;
    assert!(
        rows[0].2.as_deref().unwrap().contains("HTTP 307"),
        "{rows:?}"
    );
    assert_eq!(
        receiver.requests().len(),
        1,
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn deliveries_due_when_the_server_restarts_are_delivered_by_the_next_one() {
    let receiver = Receiver::start(0).await;
    receiver.set_failing(true);
    let app = spawn_app_with(Backend::Local, |s| receiver.configure(s)).await;
    for n in 0..5 {
        issue(&app, &format!("restart/{n}.bin")).await;
    }
    receiver
        .wait_until("a first attempt of each", |requests| requests.len() >= 5)
        .await;

    let app = app.restart().await;
    receiver.set_failing(false);

    let delivered = receiver.wait_for_delivered(5).await;
    let ids: std::collections::HashSet<&str> = delivered.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 5, "each event delivered: {delivered:#?}");
    wait_for_status(&app, "delivered").await;
}

/// How many events wait in the intake for a dispatcher to move them.
async fn in_intake(app: &TestApp) -> i64 {
    app.database()
        .await
        .query_one("SELECT count(*) FROM event_intake", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn events_a_stopped_server_left_in_the_intake_are_delivered_by_the_next_one() {
    let receiver = Receiver::start(0).await;
    // The events recorded now stay in the intake.
    let app = app_whose_dispatcher_ran_once(&receiver).await;
    for n in 0..3 {
        issue(&app, &format!("intake/{n}.bin")).await;
    }
    assert_eq!(in_intake(&app).await, 3);
    assert!(receiver.requests().is_empty());

    let app = app.restart_with(fast_webhooks).await;

    let delivered = receiver.wait_for_delivered(3).await;
    assert!(
        delivered
            .iter()
            .all(|r| r.verified && r.event_type() == "asset.created")
    );
    let keys: std::collections::HashSet<String> = delivered
        .iter()
        .map(|r| r.payload["data"]["object_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 3, "{delivered:#?}");
    wait_for_status(&app, "delivered").await;
    assert_eq!(in_intake(&app).await, 0);
}

#[tokio::test]
async fn a_delivery_claimed_by_a_replica_that_died_is_sent_once_its_lease_runs_out() {
    use cloud_asset_uploader::db::{EventRepository, connect_lazy};

    let receiver = Receiver::start(0).await;
    let app = app_whose_dispatcher_ran_once(&receiver).await;
    issue(&app, "lease/claimed.bin").await;
    // The replica that "dies": it moves the event and claims its delivery with a 2 s lease,
    // then never sends it nor records anything.
    let events = EventRepository::new(connect_lazy(&app.settings().database).unwrap());
    assert_eq!(events.take_intake(10).await.unwrap(), 1);
    let claimed = events
        .claim(&["receiver".to_owned()], 10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let claimed_at = tokio::time::Instant::now();

    let app = app.restart_with(fast_webhooks).await;

    let delivered = receiver.wait_for_delivered(1).await;
    assert!(
        claimed_at.elapsed() >= Duration::from_millis(1900),
        "sent {:?} after the claim, before its lease ran out",
        claimed_at.elapsed()
    );
    assert_eq!(
        delivered[0].id,
        format!("evt_{}", claimed[0].event_id.simple()),
        "the claimed event"
    );
    let rows = wait_for_status(&app, "delivered").await;
    assert_eq!(rows[0].1, 2, "the lost attempt counts: {rows:?}");
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn two_replicas_deliver_each_event_once() {
    let receiver = Receiver::start(0).await;
    receiver.set_delay(Duration::from_millis(30));
    let (first, second) = spawn_replicas(Backend::Local, |s| {
        receiver.configure(s);
        s.webhooks.batch_size = 2;
    })
    .await;

    for n in 0..20 {
        let app = if n % 2 == 0 { &first } else { &second };
        issue(app, &format!("replicas/{n}.bin")).await;
    }

    receiver.wait_for_delivered(20).await;
    wait_for_status(&first, "delivered").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for request in receiver.requests() {
        *per_id.entry(request.id).or_default() += 1;
    }
    assert_eq!(per_id.len(), 20);
    assert!(per_id.values().all(|&n| n == 1), "{per_id:?}");
}

#[tokio::test]
async fn private_targets_are_refused_by_default() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(Backend::Local, |s| {
        let by_name = receiver.url.replace("127.0.0.1", "localhost");
        s.webhooks.endpoints = vec![receiver.endpoint("literal"), receiver.endpoint("by-name")];
        s.webhooks.endpoints[1].url = by_name;
        s.webhooks.max_attempts = 2;
        fast_webhooks(s);
    })
    .await;

    issue(&app, "ssrf.bin").await;

    let rows = wait_for_status(&app, "failed").await;
    assert_eq!(rows.len(), 2);
    for (_, _, error) in &rows {
        let error = error.as_deref().unwrap();
        assert!(error.contains("target refused"), "{error}");
        assert!(!error.contains("/hook"), "no URL path in errors: {error}");
    }
    assert!(
        receiver.requests().is_empty(),
        "nothing reached the receiver"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .contains(r#"uploader_webhook_attempts_total{endpoint="literal",result="refused"} 2"#),
        "{metrics}"
    );
}

/// Runs the binary's `events` command against `app`'s database; returns its stdout.
fn events_command(app: &TestApp, args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cloud-asset-uploader"));
    for (name, _) in std::env::vars() {
        if name.starts_with("UPLOADER_") || name == "DATABASE_URL" {
            command.env_remove(name);
        }
    }
    let dir = std::env::temp_dir();
    let output = command
        .current_dir(dir)
        .env("DATABASE_URL", app.database_url())
        .arg("events")
        .args(args)
        .output()
        .expect("running the events command");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "events {args:?} failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn the_events_command_lists_failed_deliveries_and_retries_them() {
    let receiver = Receiver::start(0).await;
    receiver.set_failing(true);
    let app = app_giving_up_after(&receiver, 1).await;
    let asset_id = issue(&app, "cli.bin").await;
    wait_for_status(&app, "failed").await;
    let failed_id = receiver.requests()[0].id.clone();

    let listed = events_command(&app, &["list", "--failed"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "a header and the failed delivery: {listed}");
    for expected in [
        "failed",
        "receiver",
        "asset.created",
        &asset_id.to_string(),
        &failed_id,
        "HTTP 500",
    ] {
        assert!(lines[1].contains(expected), "{expected} missing: {listed}");
    }

    let delivery_id = lines[1].split('\t').next().unwrap();
    receiver.set_failing(false);
    let retried = events_command(&app, &["retry", delivery_id]);
    assert!(retried.starts_with("1 "), "{retried}");

    let delivered = receiver.wait_for_delivered(1).await;
    assert_eq!(
        delivered[0].id, failed_id,
        "the same event, the same webhook-id"
    );
    wait_for_status(&app, "delivered").await;
    let listed = events_command(&app, &["list", "--failed"]);
    assert_eq!(
        listed.lines().count(),
        1,
        "nothing failed any more: {listed}"
    );
    assert!(events_command(&app, &["list"]).contains("delivered"));
    let retried = events_command(&app, &["retry", "--all-failed"]);
    assert!(retried.starts_with("0 "), "{retried}");
}
