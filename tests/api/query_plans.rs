//! Every statement the server runs against `assets` uses an index: a table of 200 000 seeded
//! assets (100 owners, a third pending), the API driven through each route with Postgres
//! logging that database's statements (`log_statement = all`), then each statement from the
//! log planned again the way a prepared statement is after a few runs (a generic plan), and
//! the plan searched for a sequential scan of `assets`.
//!
//! A statement the flow below does not run is not checked: add the route to the flow when a
//! new one reaches the database.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_postgres::{Client, NoTls};

use crate::helpers::{
    Backend, TestApp, json_with_status, new_database, postgres_log, spawn_app_with,
};
use crate::multipart::part_checksums::{
    etag, put_signed, sign_declared, start_with_part_checksums,
};
use crate::multipart::support::{MIB, complete, put_part, small_parts, start};

mod pending_listing;

const STORAGE_EVENTS_TOKEN: &str = "query-plans-storage-events-token-0123456789";

/// Seeded rows; enough that a scan of the table costs more than any index path.
const SEEDED: u32 = 200_000;

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// 100 owners (`anonymous`, whom the API acts as, among them) with 2 000 assets each.
async fn seed(db: &Client) {
    db.batch_execute(&format!(
        "INSERT INTO assets (id, owner, object_key, storage_key, bucket, status, content_type,
                             content_length, stored_size, created_at, upload_expires_at,
                             completed_at)
         SELECT gen_random_uuid(),
                CASE WHEN i % 100 = 0 THEN 'anonymous' ELSE 'owner-' || (i % 100) END,
                'seed/' || i, 'uploads/seed/' || i, 'seed-bucket',
                CASE WHEN i % 3 = 0 THEN 'pending' ELSE 'complete' END,
                'application/octet-stream', 1024,
                CASE WHEN i % 3 = 0 THEN NULL ELSE 1024 END,
                now() - make_interval(secs => i),
                now() + interval '1 day',
                CASE WHEN i % 3 = 0 THEN NULL ELSE now() END
         FROM generate_series(1, {SEEDED}) AS i;
         ANALYZE assets;"
    ))
    .await
    .expect("seeding the assets table");
}

/// Drives every route that reaches the database, as the owner `anonymous`.
async fn run_the_api(app: &TestApp) {
    let grant = app
        .new_upload(&json!({ "object_key": "plans/one.txt", "content_length": 5 }))
        .await;
    let again = app
        .request_upload(&json!({ "object_key": "plans/one.txt", "content_length": 5 }))
        .await;
    assert_eq!(again.status().as_u16(), 200, "a re-issue");
    let id = app.store("plans/two.txt", b"bytes").await;
    assert_eq!(app.access(id, None).await.status().as_u16(), 200);
    for path in [
        format!("/api/assets/{id}"),
        "/api/assets".to_owned(),
        "/api/assets?status=complete&limit=10".to_owned(),
        "/api/assets?status=pending&prefix=plans/".to_owned(),
    ] {
        assert_eq!(app.get(&path).await.status().as_u16(), 200, "{path}");
    }
    let first: Value = json_with_status(app.get("/api/assets?limit=5").await, 200).await;
    let cursor = first["next_cursor"].as_str().expect("more than one page");
    let next = app
        .get(&format!("/api/assets?limit=5&cursor={cursor}"))
        .await;
    assert_eq!(next.status().as_u16(), 200);
    let deleted = app
        .client
        .delete(format!("{}/api/assets/{}", app.address, grant.asset_id))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);

    let bytes = crate::helpers::sample_file((11 * MIB) as usize);
    let multipart = start(app, &bytes).await;
    let mut parts = Vec::new();
    for part in multipart["signed_info"]["parts"].as_array().unwrap() {
        let etag = put_part(app, part, &bytes).await;
        parts.push(json!({ "part_number": part["part_number"], "etag": etag }));
    }
    let multipart_id = multipart["asset_id"].as_str().unwrap();
    let signed = app
        .client
        .post(format!("{}/api/upload/{multipart_id}/parts", app.address))
        .json(&json!({ "part_numbers": [1] }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 200, "signing a part again");
    let completed = complete(app, multipart_id, json!(parts)).await;
    assert_eq!(completed.status().as_u16(), 200);

    // Parts declared with their SHA-256: recorded, checked at completion, then dropped.
    let declared = start_with_part_checksums(app, &bytes).await;
    let declared_id = declared["asset_id"].as_str().unwrap();
    let signed = sign_declared(app, declared_id, &bytes, &[1, 2, 3]).await;
    let mut parts = Vec::new();
    for (part, number) in signed["parts"].as_array().unwrap().iter().zip(1..) {
        let start = (number - 1) * 5 * MIB as usize;
        let end = (start + 5 * MIB as usize).min(bytes.len());
        let stored = put_signed(app, part, bytes[start..end].to_vec()).await;
        assert_eq!(stored.status().as_u16(), 200);
        parts.push(json!({ "part_number": number, "etag": etag(&stored) }));
    }
    let completed = complete(app, declared_id, json!(parts)).await;
    assert_eq!(completed.status().as_u16(), 200);

    // Storage reporting a new object: the lookup by bucket and storage key.
    let stored = app
        .database()
        .await
        .query_one(
            "SELECT bucket, storage_key FROM assets WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let (bucket, key): (String, String) = (stored.get(0), stored.get(1));
    let notified = app
        .client
        .post(format!("{}/api/storage-events", app.address))
        .bearer_auth(STORAGE_EVENTS_TOKEN)
        .json(&json!({ "detail-type": "Object Created", "detail": {
            "bucket": { "name": bucket },
            "object": { "key": key },
        }}))
        .send()
        .await
        .unwrap();
    let notified: Value = json_with_status(notified, 200).await;
    assert_eq!(
        notified["objects"][0]["outcome"], "already_complete",
        "{notified}"
    );
}

/// The generic plan of `query` (parameters unknown, as a prepared statement's plan once
/// cached), as EXPLAIN's JSON.
async fn generic_plan(db: &Client, query: &str) -> Result<Value, String> {
    db.batch_execute("DEALLOCATE ALL; SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    db.batch_execute(&format!("PREPARE checked AS {query}"))
        .await
        .map_err(|e| format!("preparing: {e}"))?;
    let row = db
        .query_one(
            "SELECT cardinality(parameter_types) FROM pg_prepared_statements \
             WHERE name = 'checked'",
            &[],
        )
        .await
        .unwrap();
    let count: i32 = row.get(0);
    let nulls = vec!["NULL"; usize::try_from(count).unwrap()].join(", ");
    let execute = if count == 0 {
        "EXECUTE checked".to_owned()
    } else {
        format!("EXECUTE checked({nulls})")
    };
    let messages = db
        .simple_query(&format!("EXPLAIN (FORMAT JSON) {execute}"))
        .await
        .map_err(|e| format!("explaining: {e}"))?;
    let text = messages
        .iter()
        .find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0),
            _ => None,
        })
        .ok_or("EXPLAIN returned no plan")?;
    serde_json::from_str(text).map_err(|e| format!("reading the plan: {e}"))
}

/// Makes Postgres log every statement of the database at `database_url` (so of the server
/// started next), and logs a line of its own first; returns that line, the marker to pass to
/// [`logged_statements`] (the log is shared by all tests).
async fn log_statements_from_now(db: &Client, database_url: &str) -> String {
    let name = database_url.rsplit('/').next().unwrap();
    db.batch_execute(&format!("ALTER DATABASE {name} SET log_statement = 'all'"))
        .await
        .unwrap();
    let marker = format!("statements of {name}");
    db.batch_execute(&format!("DO $$ BEGIN RAISE LOG '{marker}'; END $$"))
        .await
        .unwrap();
    marker
}

/// The distinct statements on `assets` that Postgres logged executing after `marker`, as
/// the server sent them (literals in place, parameters as `$n`).
fn logged_statements(log: &str, marker: &str) -> Vec<String> {
    let (_, after) = log.split_once(marker).expect("the marker is in the log");
    let mut statements: Vec<String> = after
        .lines()
        .filter_map(|line| line.split_once(" LOG:  execute ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once(": ").map(|(_, sql)| sql.trim().to_owned()))
        .filter(|sql| {
            let lower = sql.to_ascii_lowercase();
            lower.contains("assets")
                && ["with", "select", "insert", "update", "delete"]
                    .iter()
                    .any(|verb| lower.starts_with(verb))
        })
        .collect();
    statements.sort();
    statements.dedup();
    statements
}

/// Whether `plan` reads `assets` with a sequential scan anywhere.
fn scans_assets(plan: &Value) -> bool {
    match plan {
        Value::Object(node) => {
            (node.get("Node Type") == Some(&json!("Seq Scan"))
                && node.get("Relation Name") == Some(&json!("assets")))
                || node.values().any(scans_assets)
        }
        Value::Array(items) => items.iter().any(scans_assets),
        _ => false,
    }
}

#[tokio::test]
async fn every_statement_on_assets_uses_an_index_on_a_large_table() {
    // Arrange
    let database_url = new_database().await;
    let db = connect(&database_url).await;
    seed(&db).await;
    let marker = log_statements_from_now(&db, &database_url).await;
    let url = database_url.clone();
    let app = spawn_app_with(Backend::S3, move |s| {
        small_parts(s);
        s.database.url = Some(secrecy::SecretString::from(url));
        s.uploads.max_pending_uploads = Some(1_000_000);
        s.uploads.max_total_bytes = Some(1 << 40);
        s.lifecycle.sweeper_enabled = true;
        s.lifecycle.sweep_interval = Duration::from_millis(500);
        s.storage_events.token = Some(STORAGE_EVENTS_TOKEN.to_owned().into());
    })
    .await;

    // Act
    run_the_api(&app).await;
    // Let the sweeper run at least once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let statements = logged_statements(&postgres_log(), &marker);

    // Assert
    let mut scans = Vec::new();
    let mut checked = 0;
    for query in &statements {
        let plan = generic_plan(&db, query)
            .await
            .unwrap_or_else(|e| panic!("{e}: {query}"));
        checked += 1;
        if scans_assets(&plan) {
            scans.push(format!("{query}\n{plan:#}"));
        }
    }
    let unindexed = generic_plan(&db, "SELECT id FROM assets WHERE content_type = $1").await;
    assert!(
        scans_assets(&unindexed.unwrap()),
        "the check sees a sequential scan where there is one"
    );
    assert!(
        checked >= 9,
        "the flow reached only {checked} statements: {statements:#?}"
    );
    assert!(
        scans.is_empty(),
        "sequential scans of assets ({} of {checked} statements):\n{}",
        scans.len(),
        scans.join("\n\n")
    );
}
