//! What must hold of a load's record, and of the data, after a fault.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::load::{Answer, Record, Route};
use super::payload;

/// Every answer is its route's success or a 503 problem+json naming an unavailable
/// dependency; no request went unanswered.
pub fn assert_only_successes_and_503s(record: &Record) {
    let wrong: Vec<_> = record
        .outcomes
        .iter()
        .filter(|o| !o.succeeded() && !is_unavailable(&o.answer))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} answers were neither a success nor a 503 problem: {:#?}",
        wrong.len(),
        record.outcomes.len(),
        &wrong[..wrong.len().min(10)]
    );
}

fn is_unavailable(answer: &Answer) -> bool {
    matches!(
        answer,
        Answer::Status { status: 503, content_type: Some(content_type), code: Some(code) }
            if content_type == "application/problem+json"
                && matches!(code.as_str(), "database_unavailable" | "storage_unavailable")
    )
}

/// How long after `back` (the dependency answering again) each route first succeeded; the
/// longest of the three.
pub fn recovery(record: &Record, back: Instant) -> Duration {
    [Route::Upload, Route::Complete, Route::Access]
        .iter()
        .map(|route| {
            record
                .outcomes
                .iter()
                .filter(|o| o.route == *route && o.succeeded() && o.finished >= back)
                .map(|o| o.finished - back)
                .min()
                .unwrap_or_else(|| {
                    panic!("{route:?} never succeeded after the dependency returned")
                })
        })
        .max()
        .unwrap()
}

/// Requests started `after` this moment all succeeded.
pub fn assert_all_succeeded_after(record: &Record, after: Instant) {
    let failed: Vec<_> = record
        .outcomes
        .iter()
        .filter(|o| o.started >= after && !o.succeeded())
        .collect();
    assert!(
        failed.is_empty(),
        "after recovery, {} requests still failed: {:#?}",
        failed.len(),
        &failed[..failed.len().min(10)]
    );
}

/// Refusals (503) among the answers: the fault must have been felt, or the test proved
/// nothing.
pub fn unavailable_answers(record: &Record) -> usize {
    record
        .outcomes
        .iter()
        .filter(|o| is_unavailable(&o.answer))
        .count()
}

/// Every asset the database holds as complete — every one the load was answered `complete`
/// for among them — is downloadable through the server, of its declared size and
/// byte-for-byte what was uploaded. Returns how many were checked.
pub async fn assert_every_complete_asset_is_stored(
    base: &str,
    database_url: &str,
    record: &Record,
) -> usize {
    let (db, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .expect("connecting to the test database");
    tokio::spawn(connection);
    let rows = db
        .query(
            "SELECT id::text, object_key, content_length, stored_size FROM assets \
             WHERE status = 'complete'",
            &[],
        )
        .await
        .unwrap();
    let complete: HashSet<String> = rows.iter().map(|row| row.get(0)).collect();
    let lost: Vec<_> = record
        .completed
        .iter()
        .filter(|c| !complete.contains(&c.asset_id))
        .collect();
    assert!(
        lost.is_empty(),
        "answered complete, not complete: {lost:#?}"
    );

    let client = reqwest::Client::new();
    let checks = rows.iter().map(|row| {
        let (id, key): (String, String) = (row.get(0), row.get(1));
        let (declared, stored): (Option<i64>, Option<i64>) = (row.get(2), row.get(3));
        let client = &client;
        async move {
            let expected = payload(&key);
            let len = i64::try_from(expected.len()).unwrap();
            assert_eq!(declared, Some(len), "declared size of {id}");
            assert_eq!(stored, Some(len), "stored size of {id}");
            let grant: serde_json::Value = client
                .get(format!("{base}/api/access"))
                .query(&[("asset_id", &id)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let url = grant["url"]
                .as_str()
                .unwrap_or_else(|| panic!("no download for {id}: {grant}"));
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "download of {id}");
            let bytes = response.bytes().await.unwrap();
            assert!(bytes[..] == expected[..], "the bytes of {id} ({key})");
        }
    });
    futures::stream::iter(checks)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    rows.len()
}

/// One line for the log (and the README's figures): requests, 503s, completions.
pub fn summary(name: &str, record: &Record, recovered: Option<Duration>, checked: usize) {
    eprintln!(
        "{name}: {} requests, {} answered 503, {} completed, recovery {:?}, {checked} complete \
         assets checked byte-for-byte",
        record.outcomes.len(),
        unavailable_answers(record),
        record.completed.len(),
        recovered,
    );
}
