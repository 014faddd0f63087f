//! Requests HTTP itself refuses (a malformed head, a target or header block too long): raw
//! bytes over TCP, since a client library would not send them. Each answer is problem+json
//! like every other error, and closes the connection.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Backend, spawn_app};

/// A response read off the wire until the server closed the connection.
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn problem(&self) -> Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "headers: {:?}, body: {}",
            self.headers,
            String::from_utf8_lossy(&self.body)
        );
        let declared: usize = self.header("content-length").unwrap().parse().unwrap();
        assert_eq!(declared, self.body.len(), "content-length matches the body");
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Sends `request` as it is and reads the answer to the end of the connection.
async fn send_raw(address: &str, request: &[u8]) -> RawResponse {
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    // The server may answer (and close) before it has read everything we send.
    let _ = stream.write_all(request).await;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut raw),
    )
    .await
    .expect("the server closes the connection after its answer");
    if let Err(error) = read {
        assert!(!raw.is_empty(), "no answer before {error}");
    }
    parse(&raw)
}

fn parse(raw: &[u8]) -> RawResponse {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    RawResponse {
        status: status.parse().unwrap(),
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

fn assert_refused(response: &RawResponse, status: u16, code: &str) {
    assert_eq!(response.status, status);
    let problem = response.problem();
    assert_eq!(problem["status"], status, "{problem}");
    assert_eq!(problem["code"], code, "{problem}");
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(response.header("connection"), Some("close"));
}

#[tokio::test]
async fn a_malformed_content_length_gets_a_problem() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    // Act
    let response = send_raw(
        &app.address,
        b"POST /api/upload HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n{}",
    )
    .await;

    // Assert
    assert_refused(&response, 400, "malformed_request");
}

#[tokio::test]
async fn a_request_target_too_long_for_http_gets_a_problem() {
    // Arrange: hyper's own limit on a request target is 64 KiB.
    let app = spawn_app(Backend::Local).await;
    let target = format!("/healthz?{}", "a".repeat(70 * 1024));

    // Act
    let response = send_raw(
        &app.address,
        format!("GET {target} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes(),
    )
    .await;

    // Assert
    assert_refused(&response, 414, "uri_too_long");
}

#[tokio::test]
async fn headers_over_the_limit_get_431_and_headers_under_it_are_served() {
    // Arrange: the limit is server.max_header_bytes, 32 KiB by default; hyper itself would
    // read about 400 KB, so both a block just over our limit and one past hyper's are tried.
    let app = spawn_app(Backend::Local).await;
    let request = |filler: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-filler: {}\r\n\r\n",
            "a".repeat(filler)
        )
    };

    // Act
    let under = send_raw(&app.address, request(30 * 1024).as_bytes()).await;
    let over = send_raw(&app.address, request(33 * 1024).as_bytes()).await;
    let far_over = send_raw(&app.address, request(600 * 1024).as_bytes()).await;

    // Assert
    assert_eq!(under.status, 200);
    assert_refused(&over, 431, "request_headers_too_large");
    assert_refused(&far_over, 431, "request_headers_too_large");
}

#[tokio::test]
async fn a_request_line_that_is_not_http_gets_a_problem() {
    // Arrange
    let app = spawn_app(Backend::Local).await;

    // Act
    let response = send_raw(&app.address, b"G\x01T / HTTP/1.1\r\nhost: x\r\n\r\n").await;

    // Assert
    assert_refused(&response, 400, "malformed_request");
}
