//! The outbox: every asset change that commits is delivered as one signed event, and nothing
//! else is. A real receiver on 127.0.0.1 verifies each signature with `standardwebhooks`.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::receiver::Receiver;
use crate::helpers::{
    Backend, TestApp, assert_problem, assert_status, assert_success, sample_file, spawn_app,
    spawn_app_with,
};

/// Events recorded in the test's database for `asset_id`, oldest first, whether the
/// dispatcher moved them out of the intake yet or not.
async fn recorded_events(app: &TestApp, asset_id: Uuid) -> Vec<String> {
    app.database()
        .await
        .query(
            "SELECT type FROM (SELECT type, asset_id, created_at FROM events \
                 UNION ALL SELECT type, asset_id, created_at FROM event_intake) e \
             WHERE asset_id = $1 ORDER BY created_at, type",
            &[&asset_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn an_upload_and_its_completion_are_delivered_signed_with_the_asset() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(Backend::Local, |s| receiver.configure(s)).await;
    let bytes = sample_file(1234);

    let asset_id = app.store("photos/cat.jpg", &bytes).await;

    let delivered = receiver.wait_for_delivered(2).await;
    assert!(delivered.iter().all(|r| r.verified), "{delivered:#?}");
    let types: Vec<&str> = delivered.iter().map(|r| r.event_type()).collect();
    assert_eq!(types, ["asset.created", "asset.completed"]);
    assert_ne!(delivered[0].id, delivered[1].id, "one webhook-id per event");
    let completed = &delivered[1].payload;
    assert_eq!(completed["data"]["asset_id"], asset_id.to_string());
    assert_eq!(completed["data"]["object_key"], "photos/cat.jpg");
    assert_eq!(completed["data"]["owner"], "anonymous");
    assert_eq!(completed["data"]["size"], 1234);
    assert!(
        completed["data"]["storage_key"]
            .as_str()
            .unwrap()
            .contains(&asset_id.to_string())
    );
    for text in [&completed["timestamp"], &completed["data"]["created_at"]] {
        let text = text.as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok(), "{text}");
    }
    assert!(completed["data"]["completed_at"].is_string());
    assert!(delivered[0].payload["data"]["completed_at"].is_null());
}

#[tokio::test]
async fn a_reissue_emits_no_second_created_event_and_a_delete_emits_deleted() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(Backend::Local, |s| receiver.configure(s)).await;
    let body = json!({ "object_key": "doc.pdf", "content_length": 10 });
    let first = app.new_upload(&body).await;
    assert_status(app.request_upload(&body).await, 200).await;

    let deleted = app
        .client
        .delete(format!("{}/api/assets/{}", app.address, first.asset_id))
        .send()
        .await
        .unwrap();
    assert_status(deleted, 204).await;

    let delivered = receiver.wait_for_delivered(2).await;
    let types: Vec<&str> = delivered.iter().map(|r| r.event_type()).collect();
    assert_eq!(types, ["asset.created", "asset.deleted"]);
    assert!(
        delivered
            .iter()
            .all(|r| r.asset_id() == first.asset_id.to_string())
    );
}

#[tokio::test]
async fn a_completion_that_fails_verification_produces_no_completed_event() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(Backend::Local, |s| receiver.configure(s)).await;
    let grant = app
        .new_upload(&json!({ "object_key": "never-sent.bin" }))
        .await;
    let declared = app
        .new_upload(&json!({ "object_key": "short.bin", "content_length": 100 }))
        .await;

    // Nothing uploaded, and an upload shorter than declared: storage refuses both.
    assert_problem(
        app.mark_status(grant.asset_id, "complete").await,
        409,
        "upload_not_found",
    )
    .await;
    let _ = app
        .upload_file(&declared.signed_info, &sample_file(10))
        .await;
    let refused = app.mark_status(declared.asset_id, "complete").await;
    assert!(refused.status().is_client_error(), "{}", refused.status());

    receiver.wait_for_delivered(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        recorded_events(&app, grant.asset_id).await,
        ["asset.created"]
    );
    assert_eq!(
        recorded_events(&app, declared.asset_id).await,
        ["asset.created"]
    );
    assert!(
        receiver
            .requests()
            .iter()
            .all(|r| r.event_type() == "asset.created")
    );
}

#[tokio::test]
async fn a_swept_upload_emits_expired() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(Backend::Local, |s| {
        receiver.configure(s);
        s.lifecycle.sweep_interval = Duration::from_secs(1);
        s.lifecycle.pending_grace = Duration::ZERO;
    })
    .await;
    let grant = app
        .new_upload(&json!({ "object_key": "abandoned.bin" }))
        .await;
    app.database()
        .await
        .execute(
            "UPDATE assets SET upload_expires_at = now() - interval '1 minute' WHERE id = $1",
            &[&grant.asset_id],
        )
        .await
        .unwrap();

    let delivered = receiver.wait_for_delivered(2).await;

    assert_eq!(delivered[1].event_type(), "asset.expired");
    assert_eq!(delivered[1].asset_id(), grant.asset_id.to_string());
}

#[tokio::test]
async fn without_endpoints_no_event_is_recorded() {
    let app = spawn_app(Backend::Local).await;

    let asset_id = app.store("quiet.txt", b"hello").await;

    assert!(recorded_events(&app, asset_id).await.is_empty());
    let count: i64 = app
        .database()
        .await
        .query_one(
            "SELECT (SELECT count(*) FROM event_deliveries) + (SELECT count(*) FROM event_intake)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
}

#[tokio::test]
async fn an_endpoint_gets_only_the_event_types_it_subscribed_to() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(Backend::Local, |s| {
        receiver.configure(s);
        s.webhooks.endpoints[0].events = vec!["asset.completed".into()];
    })
    .await;

    app.store("a.txt", b"a").await;
    app.store("b.txt", b"b").await;

    let delivered = receiver.wait_for_delivered(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.requests().len(), 2);
    assert!(
        delivered
            .iter()
            .all(|r| r.event_type() == "asset.completed")
    );
}

#[tokio::test]
async fn the_openapi_document_describes_the_payload_as_a_webhook() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(Backend::Local, |s| receiver.configure(s)).await;
    app.store("schema.txt", b"schema").await;
    let delivered = receiver.wait_for_delivered(2).await;

    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();

    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let hook = &doc["webhooks"]["assetEvent"]["post"];
    let body = &hook["requestBody"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(body, "#/components/schemas/AssetEventV1");
    let headers: HashSet<&str> = hook["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        headers,
        HashSet::from(["webhook-id", "webhook-timestamp", "webhook-signature"])
    );
    // The schema and the body the SQL builds name the same fields.
    let schemas = &doc["components"]["schemas"];
    let keys =
        |value: &Value| -> HashSet<String> { value.as_object().unwrap().keys().cloned().collect() };
    let payload = &delivered[1].payload;
    assert_eq!(keys(&schemas["AssetEventV1"]["properties"]), keys(payload));
    assert_eq!(
        keys(&schemas["AssetEventData"]["properties"]),
        keys(&payload["data"])
    );
}

#[tokio::test]
async fn deliveries_are_counted_in_the_metrics() {
    let receiver = Receiver::start(1).await;
    let app = spawn_app_with(Backend::Local, |s| receiver.configure(s)).await;
    let grant = app.new_upload(&json!({ "object_key": "m.bin" })).await;
    assert_success(app.upload_file(&grant.signed_info, b"m").await).await;
    receiver.wait_for_delivered(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let text = app.get("/metrics").await.text().await.unwrap();

    for expected in [
        r#"uploader_webhook_deliveries_total{endpoint="receiver",outcome="delivered"} 1"#,
        r#"uploader_webhook_attempts_total{endpoint="receiver",result="http_error"} 1"#,
        r#"uploader_webhook_attempts_total{endpoint="receiver",result="success"} 1"#,
        "uploader_webhook_attempt_duration_seconds_count{",
        "uploader_webhook_queue_depth ",
        "uploader_webhook_oldest_due_age_seconds ",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}
