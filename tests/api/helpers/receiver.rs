//! A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records every request,
//! verifies its signature with the `standardwebhooks` crate, and answers 500 while told to
//! fail.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use cloud_asset_uploader::config::{EndpointSettings, Settings};
use salvo::conn::tcp::TcpAcceptor;
use salvo::http::StatusCode;
use salvo::{Request, Response, Router, Server};
use secrecy::SecretString;
use serde_json::Value;

/// What one request to the receiver carried.
#[derive(Debug, Clone)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// The body, parsed.
    pub payload: Value,
    /// Whether `standardwebhooks` accepted the signature.
    pub verified: bool,
    /// The status the receiver answered.
    pub answered: u16,
}

impl Received {
    /// The payload's `type`.
    pub fn event_type(&self) -> &str {
        self.payload["type"].as_str().unwrap_or_default()
    }

    /// The payload's `data.asset_id`.
    pub fn asset_id(&self) -> &str {
        self.payload["data"]["asset_id"]
            .as_str()
            .unwrap_or_default()
    }
}

struct State {
    secret: String,
    requests: Mutex<Vec<Received>>,
    /// Requests still to be answered 500, before the receiver recovers.
    fail_next: AtomicUsize,
    /// Answer 500 to everything while set.
    failing: AtomicBool,
    /// Answer `307 Temporary Redirect` to itself while set.
    redirecting: AtomicBool,
    /// How long each answer takes.
    delay: Mutex<Duration>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A signing secret as an operator would generate it: `whsec_` + base64 of 32 bytes.
pub fn test_secret() -> String {
    let bytes: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

struct Hook(Arc<State>);

#[salvo::handler]
impl Hook {
    async fn handle(&self, req: &mut Request, res: &mut Response) {
        let headers = req.headers().clone();
        let body = req.payload().await.map(|b| b.to_vec()).unwrap_or_default();
        let verified = standardwebhooks::Webhook::new(&self.0.secret)
            .and_then(|hook| hook.verify(&body, &headers))
            .is_ok();
        let fail = self.0.failing.load(Ordering::SeqCst)
            || self
                .0
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        let delay = *self.0.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        let redirect = self.0.redirecting.load(Ordering::SeqCst);
        let answered = match (redirect, fail) {
            (true, _) => 307,
            (false, true) => 500,
            (false, false) => 204,
        };
        if redirect {
            res.add_header("location", "/hook", true).unwrap();
        }
        self.0.requests.lock().unwrap().push(Received {
            id: headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            payload: serde_json::from_slice(&body).unwrap_or(Value::Null),
            verified,
            answered,
        });
        res.status_code(StatusCode::from_u16(answered).unwrap());
    }
}

impl Receiver {
    /// Starts a receiver that answers 500 to its first `fail_first` requests, then 204.
    pub async fn start(fail_first: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            secret: test_secret(),
            requests: Mutex::new(Vec::new()),
            fail_next: AtomicUsize::new(fail_first),
            failing: AtomicBool::new(false),
            redirecting: AtomicBool::new(false),
            delay: Mutex::new(Duration::ZERO),
        });
        let router = Router::with_path("hook").post(Hook(state.clone()));
        let acceptor = TcpAcceptor::try_from(listener).unwrap();
        let server = tokio::spawn(async move {
            Server::new(acceptor).serve(router).await;
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
            server,
        }
    }

    /// Answers 500 to everything while `failing`.
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// Answers `307` (to the same URL) while `redirecting`.
    pub fn set_redirecting(&self, redirecting: bool) {
        self.state.redirecting.store(redirecting, Ordering::SeqCst);
    }

    /// Makes every answer take `delay`.
    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Received> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The requests answered 2xx so far.
    pub fn delivered(&self) -> Vec<Received> {
        let mut requests = self.requests();
        requests.retain(|r| r.answered < 300);
        requests
    }

    /// Waits (at most 20 s) until `done` holds for the requests so far; returns them.
    pub async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let requests = self.requests();
            if done(&requests) {
                return requests;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; received: {requests:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until `count` requests were answered 2xx; returns those.
    pub async fn wait_for_delivered(&self, count: usize) -> Vec<Received> {
        self.wait_until(&format!("{count} delivered event(s)"), |requests| {
            requests.iter().filter(|r| r.answered < 300).count() >= count
        })
        .await;
        self.delivered()
    }

    /// This receiver as the one endpoint of `settings`, private targets allowed, with
    /// timings short enough for tests (retries after 50 to 200 ms).
    pub fn configure(&self, settings: &mut Settings) {
        settings.webhooks.endpoints = vec![self.endpoint("receiver")];
        settings.webhooks.allow_private_targets = true;
        fast_webhooks(settings);
    }

    /// An endpoint entry for this receiver, for all event types.
    pub fn endpoint(&self, name: &str) -> EndpointSettings {
        EndpointSettings {
            name: Some(name.to_owned()),
            url: self.url.clone(),
            secret: SecretString::from(test_secret()),
            events: Vec::new(),
        }
    }
}

/// Webhook timings short enough for tests.
pub fn fast_webhooks(settings: &mut Settings) {
    settings.webhooks.poll_interval = Duration::from_millis(50);
    settings.webhooks.backoff_base = Duration::from_millis(100);
    settings.webhooks.backoff_max = Duration::from_millis(200);
    settings.webhooks.attempt_timeout = Duration::from_secs(2);
}
