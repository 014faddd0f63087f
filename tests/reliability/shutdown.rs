//! SIGTERM under load, with a kept-alive connection and a slow client: every request the
//! server accepted is answered, new connections are refused once the drain is over, and the
//! process exits within its timeouts with every completed asset intact.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::containers::Container;
use crate::support::load::{Answer, Load};
use crate::support::server::{Options, Server};
use crate::support::{one_at_a_time, verify};

const DRAIN: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn sigterm_under_load_answers_every_accepted_request_and_exits_in_time() {
    // Arrange
    let _turn = one_at_a_time().await;
    let postgres = Container::postgres().await;
    let s3 = Container::s3().await;
    let options = Options {
        shutdown_drain_secs: DRAIN.as_secs(),
        shutdown_timeout_secs: TIMEOUT.as_secs(),
    };
    let mut server = Server::start(&postgres, &s3, &options).await;
    let load = Load::start(&server.base, 16);
    // One connection, kept alive and idle until the drain.
    let kept_alive = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let before = kept_alive
        .get(format!("{}/healthz", server.base))
        .send()
        .await;
    assert_eq!(before.unwrap().status().as_u16(), 200);
    // A client whose request body takes 4 s to arrive: still in flight when the drain ends.
    let slow = tokio::spawn(slow_upload(server.base.clone(), Duration::from_secs(4)));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Act
    let signalled = Instant::now();
    server.terminate();
    server
        .wait_for_log("shutting down: not ready, draining", Duration::from_secs(5))
        .await;
    let reused = kept_alive
        .get(format!("{}/healthz", server.base))
        .send()
        .await;
    let readiness = reqwest::get(format!("{}/readyz", server.base)).await;
    server
        .wait_for_log(
            "shutting down: stopped listening, finishing in-flight requests",
            DRAIN + Duration::from_secs(3),
        )
        .await;
    let stopped_listening = Instant::now();
    let address = server.base.trim_start_matches("http://").to_owned();
    let refused = tokio::net::TcpStream::connect(&address).await;
    let slow_answer = slow.await.unwrap();
    let exit = server
        .wait_for_exit(DRAIN + TIMEOUT + Duration::from_secs(1))
        .await;
    let exited = signalled.elapsed();
    let record = load.stop().await;

    // Assert
    let reused = reused.expect("a kept-alive connection is served during the drain");
    assert_eq!(reused.status().as_u16(), 200);
    assert_eq!(
        reused
            .headers()
            .get("connection")
            .map(|v| v.to_str().unwrap()),
        Some("close"),
        "and told to reconnect elsewhere"
    );
    assert_eq!(readiness.unwrap().status().as_u16(), 503);
    assert_eq!(
        refused.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "after the drain, new connections are refused"
    );
    assert!(
        slow_answer.starts_with("HTTP/1.1 201"),
        "the slow client's request, accepted before, is answered: {slow_answer}"
    );
    let status = exit.expect("the server exits within drain + timeout");
    assert!(status.success(), "{status:?}");
    assert!(
        exited <= DRAIN + TIMEOUT + Duration::from_secs(1),
        "{exited:?}"
    );
    let unanswered: Vec<_> = record
        .outcomes
        .iter()
        .filter(|o| match o.answer {
            Answer::Refused => o.started < signalled + DRAIN,
            _ => !o.succeeded(),
        })
        .collect();
    assert!(
        unanswered.is_empty(),
        "{} accepted requests failed at shutdown (SIGTERM at {:?}, drain over at {:?}): {:#?}",
        unanswered.len(),
        signalled,
        stopped_listening,
        &unanswered[..unanswered.len().min(10)]
    );
    let refused_later = record
        .outcomes
        .iter()
        .filter(|o| matches!(o.answer, Answer::Refused))
        .count();
    assert!(
        refused_later > 0,
        "the load was still running when the drain ended"
    );
    assert!(stopped_listening >= signalled + DRAIN);

    // …and after a restart on the same database and bucket, nothing is lost.
    let server = Server::start(&postgres, &s3, &Options::default()).await;
    let checked =
        verify::assert_every_complete_asset_is_stored(&server.base, &postgres.url(), &record).await;
    verify::summary("sigterm under load", &record, None, checked);
}

/// `POST /api/upload` whose JSON body arrives in pieces over `over`; the raw answer.
async fn slow_upload(base: String, over: Duration) -> String {
    let body = serde_json::json!({
        "object_key": format!("slow/{}", uuid::Uuid::new_v4().simple()),
        "content_type": "text/plain",
        "content_length": 5,
    })
    .to_string();
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let pieces = 8;
    let step = body.len().div_ceil(pieces);
    for piece in body.as_bytes().chunks(step) {
        tokio::time::sleep(over / pieces as u32).await;
        stream.write_all(piece).await.unwrap();
    }
    let mut answer = Vec::new();
    // The answer closes the connection (the server is stopping).
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}
