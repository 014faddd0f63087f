//! Completion from storage: `POST /api/storage-events` with S3's notification shapes against
//! the S3 stand-in, and `uploads.complete_on_upload` on the local backend. Every completion
//! is checked in the database, and its `asset.completed` event at a real receiver.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::receiver::Receiver;
use crate::helpers::{
    AccessGrant, Backend, SignedInfo, TestApp, assert_problem, assert_status, header,
    json_with_status, sample_file, sha256_base64, spawn_app_with,
};
use crate::multipart::support::{MIB, complete, put_part, small_parts, start};

const TOKEN: &str = "storage-events-test-token-0123456789abcdef";

/// A server on `backend` that accepts storage events, its events delivered to `receiver`.
async fn app_with_events(backend: Backend, receiver: &Receiver) -> TestApp {
    spawn_app_with(backend, |s| {
        s.storage_events.token = Some(TOKEN.to_owned().into());
        receiver.configure(s);
    })
    .await
}

/// The bucket and storage key of an asset, as the database holds them.
async fn stored_under(app: &TestApp, asset_id: Uuid) -> (String, String) {
    let row = app
        .database()
        .await
        .query_one(
            "SELECT bucket, storage_key FROM assets WHERE id = $1",
            &[&asset_id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn status_of(app: &TestApp, asset_id: Uuid) -> String {
    let asset: Value =
        json_with_status(app.get(&format!("/api/assets/{asset_id}")).await, 200).await;
    asset["status"].as_str().unwrap().to_owned()
}

/// How many `asset.completed` events the database recorded for the asset (moved out of the
/// intake or not).
async fn completed_events(app: &TestApp, asset_id: Uuid) -> i64 {
    app.database()
        .await
        .query_one(
            "SELECT (SELECT count(*) FROM events WHERE asset_id = $1 AND type = 'asset.completed') \
                 + (SELECT count(*) FROM event_intake WHERE asset_id = $1 AND type = 'asset.completed')",
            &[&asset_id],
        )
        .await
        .unwrap()
        .get(0)
}

/// A key URL-encoded as S3 notifications carry it: `+` for a space, `%XX` for the rest of
/// what is not unreserved (`/` kept, as S3 keeps it).
fn notification_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b' ' => "+".to_owned(),
            b if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The record of the AWS documentation's example (event notification structure, 2.1).
fn aws_record(event_name: &str, bucket: &str, key: &str) -> Value {
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-west-2",
        "eventTime": "1970-01-01T00:00:00.000Z",
        "eventName": event_name,
        "userIdentity": { "principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE" },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "testConfigRule",
            "bucket": {
                "name": bucket,
                "ownerIdentity": { "principalId": "A3NL1KOZZKExample" },
                "arn": format!("arn:aws:s3:::{bucket}")
            },
            "object": {
                "key": notification_key(key),
                // Never believed: storage is asked.
                "size": 1,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                "sequencer": "0055AED6DCD90281E5"
            }
        }
    })
}

async fn post_events(app: &TestApp, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/api/storage-events", app.address))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// Asks for an upload and sends its bytes to storage, without completing it.
async fn uploaded(app: &TestApp, object_key: &str, bytes: &[u8]) -> Uuid {
    let grant = app
        .new_upload(&json!({
            "object_key": object_key,
            "content_length": bytes.len(),
            "checksum_sha256": sha256_base64(bytes),
        }))
        .await;
    assert_status(app.upload_file(&grant.signed_info, bytes).await, 200).await;
    grant.asset_id
}

#[tokio::test]
async fn an_s3_notification_completes_the_pending_asset_once_however_often_it_comes() {
    let receiver = Receiver::start(0).await;
    let app = app_with_events(Backend::S3, &receiver).await;
    let bytes = sample_file(70_000);
    let asset_id = uploaded(&app, "photos/red flower (1).jpg", &bytes).await;
    let (bucket, key) = stored_under(&app, asset_id).await;
    let body = json!({ "Records": [aws_record("ObjectCreated:Put", &bucket, &key)] });

    let answer: Value = json_with_status(post_events(&app, Some(TOKEN), &body).await, 200).await;
    assert_eq!(answer["completed"], 1, "{answer}");
    assert_eq!(answer["objects"][0]["outcome"], "completed");
    assert_eq!(answer["objects"][0]["asset_id"], asset_id.to_string());
    assert_eq!(status_of(&app, asset_id).await, "complete");
    let asset: Value =
        json_with_status(app.get(&format!("/api/assets/{asset_id}")).await, 200).await;
    assert_eq!(
        asset["stored_size"], 70_000,
        "the size storage holds: {asset}"
    );

    // S3 delivers at least once; the client may also complete it itself.
    let again: Value = json_with_status(post_events(&app, Some(TOKEN), &body).await, 200).await;
    assert_eq!(again["completed"], 0);
    assert_eq!(again["objects"][0]["outcome"], "already_complete");
    assert_status(app.mark_status(asset_id, "complete").await, 200).await;

    let delivered = receiver.wait_for_delivered(2).await;
    let types: Vec<&str> = delivered.iter().map(|r| r.event_type()).collect();
    assert_eq!(types, ["asset.created", "asset.completed"]);
    assert_eq!(completed_events(&app, asset_id).await, 1);
    let access: AccessGrant = json_with_status(app.access(asset_id, None).await, 200).await;
    let downloaded = app.download(&access.url).await;
    assert_eq!(downloaded.bytes().await.unwrap(), bytes);
}

#[tokio::test]
async fn eventbridge_and_minio_shapes_complete_too() {
    let receiver = Receiver::start(0).await;
    let app = app_with_events(Backend::S3, &receiver).await;
    let first = uploaded(&app, "eventbridge.bin", &sample_file(10)).await;
    let second = uploaded(&app, "minio/with space.bin", &sample_file(20)).await;
    let (bucket, first_key) = stored_under(&app, first).await;
    let (_, second_key) = stored_under(&app, second).await;

    let eventbridge = json!({
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "111122223333",
        "time": "2021-11-12T00:00:00Z",
        "region": "ca-central-1",
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {
            "version": "0",
            "bucket": { "name": bucket },
            "object": { "key": first_key, "size": 10, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "00617F08299329D189" },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject"
        }
    });
    let answer: Value =
        json_with_status(post_events(&app, Some(TOKEN), &eventbridge).await, 200).await;
    assert_eq!(answer["objects"][0]["outcome"], "completed", "{answer}");

    // MinIO's webhook target: `s3:`-prefixed names, the key also whole at the top level.
    let mut record = aws_record("s3:ObjectCreated:Put", &bucket, &second_key);
    record["eventSource"] = "minio:s3".into();
    let minio = json!({
        "EventName": "s3:ObjectCreated:Put",
        "Key": format!("{bucket}/{second_key}"),
        "Records": [record]
    });
    let answer: Value = json_with_status(post_events(&app, Some(TOKEN), &minio).await, 200).await;
    assert_eq!(answer["objects"][0]["outcome"], "completed", "{answer}");
    assert_eq!(status_of(&app, first).await, "complete");
    assert_eq!(status_of(&app, second).await, "complete");
}

#[tokio::test]
async fn only_the_configured_token_is_let_in() {
    let receiver = Receiver::start(0).await;
    let app = app_with_events(Backend::S3, &receiver).await;
    let asset_id = uploaded(&app, "guarded.bin", &sample_file(5)).await;
    let (bucket, key) = stored_under(&app, asset_id).await;
    let body = json!({ "Records": [aws_record("ObjectCreated:Put", &bucket, &key)] });

    for token in [
        None,
        Some("storage-events-test-token-0123456789abcdeX"),
        Some(""),
    ] {
        let refused = post_events(&app, token, &body).await;
        assert!(
            header(&refused, "www-authenticate").starts_with("Bearer"),
            "{token:?}"
        );
        assert_problem(refused, 401, "unauthorized").await;
    }
    let api_key_style = app
        .client
        .post(format!("{}/api/storage-events", app.address))
        .header("x-api-key", TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(api_key_style, 401, "unauthorized").await;
    assert_eq!(status_of(&app, asset_id).await, "pending");
}

#[tokio::test]
async fn what_does_not_name_a_stored_upload_is_answered_and_changes_nothing() {
    let receiver = Receiver::start(0).await;
    let app = app_with_events(Backend::S3, &receiver).await;
    // Issued, but nothing was ever sent to storage.
    let grant = app
        .new_upload(&json!({ "object_key": "never-sent.bin", "content_length": 1 }))
        .await;
    let (bucket, key) = stored_under(&app, grant.asset_id).await;
    let prefix = key.split('/').next().unwrap().to_owned();
    let body = json!({ "Records": [
        aws_record("ObjectCreated:Put", &bucket, &key),
        aws_record("ObjectCreated:Put", &bucket, &format!("{prefix}/nobody/{}/x", Uuid::new_v4())),
        aws_record("ObjectCreated:Put", "another-bucket", &key),
        aws_record("ObjectCreated:Put", &bucket, "elsewhere/file.bin"),
        aws_record("ObjectRemoved:Delete", &bucket, &key),
    ]});

    let answer: Value = json_with_status(post_events(&app, Some(TOKEN), &body).await, 200).await;
    let outcomes: Vec<&str> = answer["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "left_pending",
            "unknown_key",
            "other_bucket",
            "outside_prefix"
        ],
        "{answer}"
    );
    assert_eq!(answer["ignored_records"], 1);
    assert!(
        answer["objects"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("No object"),
        "{answer}"
    );
    assert_eq!(answer["completed"], 0);
    assert_eq!(status_of(&app, grant.asset_id).await, "pending");
    assert_eq!(completed_events(&app, grant.asset_id).await, 0);

    // Then the bytes arrive and storage says so again: now it completes.
    assert_status(app.upload_file(&grant.signed_info, b"x").await, 200).await;
    let answer: Value = json_with_status(post_events(&app, Some(TOKEN), &body).await, 200).await;
    assert_eq!(answer["objects"][0]["outcome"], "completed", "{answer}");
    assert_eq!(completed_events(&app, grant.asset_id).await, 1);

    // S3's test event, and bodies that are no notification.
    let test_event = json!({ "Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-12-02T00:00:00.000Z", "Bucket": bucket, "RequestId": "1", "HostId": "2" });
    let answer: Value =
        json_with_status(post_events(&app, Some(TOKEN), &test_event).await, 200).await;
    assert_eq!(answer["objects"], json!([]));
    assert_problem(
        post_events(&app, Some(TOKEN), &json!({ "hello": "world" })).await,
        400,
        "validation_failed",
    )
    .await;
    assert_problem(
        post_events(
            &app,
            Some(TOKEN),
            &json!({ "Records": [{ "eventName": 3 }] }),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn without_a_token_the_route_does_not_exist() {
    let app = spawn_app_with(Backend::S3, |_| {}).await;
    let answer = post_events(&app, Some(TOKEN), &json!({ "Records": [] })).await;
    assert_problem(answer, 404, "not_found").await;
    let doc: Value = json_with_status(app.get("/openapi.json").await, 200).await;
    assert!(doc["paths"]["/api/storage-events"].is_null());
}

/// A server on the local backend completing uploads as they are stored.
async fn completing_on_upload(receiver: &Receiver) -> TestApp {
    spawn_app_with(Backend::Local, |s| {
        s.uploads.complete_on_upload = true;
        receiver.configure(s);
    })
    .await
}

#[tokio::test]
async fn complete_on_upload_completes_a_put_in_the_request_that_stores_it() {
    let receiver = Receiver::start(0).await;
    let app = completing_on_upload(&receiver).await;
    let bytes = sample_file(4096);
    let grant = app
        .new_upload(&json!({
            "object_key": "direct.bin",
            "content_length": bytes.len(),
            "checksum_sha256": sha256_base64(&bytes),
        }))
        .await;

    let stored: Value =
        json_with_status(app.upload_file(&grant.signed_info, &bytes).await, 200).await;
    assert_eq!(stored["uploaded_status"], "complete", "{stored}");
    assert_eq!(stored["asset_id"], grant.asset_id.to_string());
    assert_eq!(stored["size"], 4096);
    assert_eq!(status_of(&app, grant.asset_id).await, "complete");

    // The client's own completion is still answered, and changes nothing.
    let status: Value =
        json_with_status(app.mark_status(grant.asset_id, "complete").await, 200).await;
    assert_eq!(status["uploaded_status"], "complete");
    // Frozen: the URL cannot replace what was completed.
    assert_problem(
        app.upload_file(&grant.signed_info, &bytes).await,
        409,
        "upload_already_complete",
    )
    .await;
    let delivered = receiver.wait_for_delivered(2).await;
    let types: Vec<&str> = delivered.iter().map(|r| r.event_type()).collect();
    assert_eq!(types, ["asset.created", "asset.completed"]);
    assert_eq!(delivered[1].payload["data"]["size"], 4096);
    assert_eq!(completed_events(&app, grant.asset_id).await, 1);
}

#[tokio::test]
async fn complete_on_upload_completes_a_form_post_and_leaves_parts_to_the_client() {
    let receiver = Receiver::start(0).await;
    let app = completing_on_upload(&receiver).await;
    // No declared length: a form.
    let grant = app.new_upload(&json!({ "object_key": "form.bin" })).await;
    assert!(matches!(grant.signed_info, SignedInfo::Post { .. }));
    let stored: Value = json_with_status(
        app.upload_file(&grant.signed_info, b"form bytes").await,
        200,
    )
    .await;
    assert_eq!(stored["uploaded_status"], "complete", "{stored}");
    assert_eq!(status_of(&app, grant.asset_id).await, "complete");
    let asset: Value = json_with_status(
        app.get(&format!("/api/assets/{}", grant.asset_id)).await,
        200,
    )
    .await;
    assert_eq!(asset["stored_size"], 10);
}

#[tokio::test]
async fn complete_on_upload_leaves_a_multipart_upload_to_the_client_that_knows_its_parts() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(Backend::Local, |s| {
        s.uploads.complete_on_upload = true;
        small_parts(s);
        receiver.configure(s);
    })
    .await;
    let file = sample_file((11 * MIB) as usize);
    let grant = start(&app, &file).await;
    let id = grant["asset_id"].as_str().unwrap();
    let parts = grant["signed_info"]["parts"].as_array().unwrap();
    let mut etags = Vec::new();
    for part in parts {
        etags.push(json!({
            "part_number": part["part_number"],
            "etag": put_part(&app, part, &file).await,
        }));
    }
    let asset_id = Uuid::parse_str(id).unwrap();
    assert_eq!(status_of(&app, asset_id).await, "pending");
    assert_status(complete(&app, id, json!(etags)).await, 200).await;
    assert_eq!(status_of(&app, asset_id).await, "complete");
    assert_eq!(completed_events(&app, asset_id).await, 1);
}
