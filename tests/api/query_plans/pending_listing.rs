//! `GET /api/assets?status=pending` (the uploads still to finish) reads the owner's pending
//! assets only: planned with its parameters, as the server's statements are, its scans of
//! `assets` read a handful of rows however many complete assets the owner holds and however
//! many pending ones other owners hold.

use serde_json::{Value, json};

use super::{connect, log_statements_from_now, logged_statements};
use crate::helpers::{Backend, json_with_status, new_database, postgres_log, spawn_app_with};

/// The owner's complete assets (its pending ones are three), and another owner's pending ones.
const COMPLETE: u32 = 20_000;

/// EXPLAIN ANALYZE of `query` planned for the values in `execute` (the way Postgres plans
/// the server's unnamed statements), as JSON.
async fn custom_plan(db: &tokio_postgres::Client, query: &str, execute: &str) -> Value {
    db.batch_execute(&format!(
        "DEALLOCATE ALL; SET plan_cache_mode = force_custom_plan; PREPARE listed AS {query}"
    ))
    .await
    .unwrap();
    let messages = db
        .simple_query(&format!(
            "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE listed{execute}"
        ))
        .await
        .unwrap();
    let text = messages
        .iter()
        .find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0),
            _ => None,
        })
        .expect("EXPLAIN returned a plan");
    serde_json::from_str(text).unwrap()
}

/// Rows the plan's scans of `assets` read: those returned and those removed by a filter.
fn rows_read_from_assets(plan: &Value) -> u64 {
    match plan {
        Value::Object(node) => {
            let own = if node.get("Relation Name") == Some(&json!("assets")) {
                ["Actual Rows", "Rows Removed by Filter"]
                    .iter()
                    .filter_map(|field| node.get(*field).and_then(Value::as_f64))
                    .sum::<f64>() as u64
            } else {
                0
            };
            own + node.values().map(rows_read_from_assets).sum::<u64>()
        }
        Value::Array(items) => items.iter().map(rows_read_from_assets).sum(),
        _ => 0,
    }
}

#[tokio::test]
async fn listing_pending_assets_reads_only_the_pending_ones_however_many_are_complete() {
    // Arrange: the owner the API acts as holds COMPLETE complete assets and three pending
    // ones, created among them; another owner holds COMPLETE pending ones.
    let database_url = new_database().await;
    let db = connect(&database_url).await;
    db.batch_execute(&format!(
        "INSERT INTO assets (id, owner, object_key, storage_key, bucket, status,
                             content_length, stored_size, created_at, upload_expires_at,
                             completed_at)
         SELECT gen_random_uuid(), 'anonymous', 'seed/' || i, 'uploads/seed/' || i,
                'seed-bucket',
                CASE WHEN i % 6000 = 0 THEN 'pending' ELSE 'complete' END, 1024,
                CASE WHEN i % 6000 = 0 THEN NULL ELSE 1024 END,
                now() - make_interval(secs => i), now() + interval '1 day',
                CASE WHEN i % 6000 = 0 THEN NULL ELSE now() END
         FROM generate_series(1, {COMPLETE} + 3) AS i;
         INSERT INTO assets (id, owner, object_key, storage_key, bucket, content_length,
                             upload_expires_at)
         SELECT gen_random_uuid(), 'someone-else', 'seed/' || i, 'uploads/other/' || i,
                'seed-bucket', 1024, now() + interval '1 day'
         FROM generate_series(1, {COMPLETE}) AS i;
         ANALYZE assets;"
    ))
    .await
    .unwrap();
    let marker = log_statements_from_now(&db, &database_url).await;
    let url = database_url.clone();
    let app = spawn_app_with(Backend::S3, move |s| {
        s.database.url = Some(secrecy::SecretString::from(url));
    })
    .await;

    // Act
    let listed: Value =
        json_with_status(app.get("/api/assets?status=pending&limit=100").await, 200).await;
    let statements = logged_statements(&postgres_log(), &marker);
    let query = statements
        .iter()
        .find(|sql| sql.contains("ORDER BY id"))
        .unwrap_or_else(|| panic!("the listing is logged: {statements:#?}"));
    // The listing's parameters: owner, cursor, status, prefix, limit (one more than the
    // page, to know whether another follows), upload token.
    let plan = custom_plan(
        &db,
        query,
        "('anonymous', NULL, 'pending', NULL, 101, NULL)",
    )
    .await;

    // Assert
    let mut keys: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|asset| asset["object_key"].as_str().unwrap())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["seed/12000", "seed/18000", "seed/6000"], "{listed}");
    let read = rows_read_from_assets(&plan);
    assert!(
        read <= 10,
        "the pending page read {read} rows of assets, not only the three pending:\n{plan:#}"
    );
}
