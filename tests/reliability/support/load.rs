//! A steady load of whole uploads — issue, store in S3, complete, sign a download — by
//! concurrent workers, recording every answer of the server with its time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::payload;

/// The routes the load calls on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Upload,
    Complete,
    /// Completion of an asset whose bytes storage refused or never got (it was down): must
    /// be refused, 409 `upload_not_found`, or 503 while storage is unreachable.
    CompleteMissing,
    Access,
}

impl Route {
    fn success(self) -> u16 {
        match self {
            Route::Upload => 201,
            Route::Complete | Route::Access => 200,
            Route::CompleteMissing => 409,
        }
    }
}

/// What the server answered one request, or how the request failed.
#[derive(Debug)]
pub enum Answer {
    Status {
        status: u16,
        content_type: Option<String>,
        code: Option<String>,
    },
    /// The connection was refused: the server was not listening (after a shutdown).
    Refused,
    /// The request was sent but no whole answer came back.
    Failed(#[expect(dead_code, reason = "read through Debug in failure messages")] String),
}

/// One request to the server.
#[derive(Debug)]
pub struct Outcome {
    pub route: Route,
    pub started: Instant,
    pub finished: Instant,
    pub answer: Answer,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        matches!(self.answer, Answer::Status { status, .. } if status == self.route.success())
    }
}

/// An asset the server answered `complete` for.
#[derive(Debug, Clone)]
pub struct Completed {
    pub asset_id: String,
}

/// Everything the load saw.
#[derive(Debug, Default)]
pub struct Record {
    pub outcomes: Vec<Outcome>,
    pub completed: Vec<Completed>,
}

/// Running workers; [`Load::stop`] ends them and collects what they saw.
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Record>>,
}

impl Load {
    /// Starts `workers` workers against `base`, each looping over whole uploads.
    pub fn start(base: &str, workers: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..workers)
            .map(|n| {
                let worker = Worker {
                    n,
                    base: base.to_owned(),
                    client: reqwest::Client::builder()
                        .timeout(Duration::from_secs(30))
                        .build()
                        .unwrap(),
                    stop: stop.clone(),
                    record: Record::default(),
                };
                tokio::spawn(worker.run())
            })
            .collect();
        Self { stop, workers }
    }

    pub async fn stop(self) -> Record {
        self.stop.store(true, Ordering::Release);
        let mut all = Record::default();
        for worker in self.workers {
            let record = worker.await.expect("a load worker panicked");
            all.outcomes.extend(record.outcomes);
            all.completed.extend(record.completed);
        }
        all.outcomes.sort_by_key(|o| o.started);
        all
    }
}

struct Worker {
    n: usize,
    base: String,
    client: reqwest::Client,
    stop: Arc<AtomicBool>,
    record: Record,
}

impl Worker {
    async fn run(mut self) -> Record {
        let mut i = 0u64;
        while !self.stop.load(Ordering::Acquire) {
            i += 1;
            let object_key = format!("load/w{}/{i}-{}", self.n, uuid::Uuid::new_v4().simple());
            if !self.one_upload(&object_key, i.is_multiple_of(2)).await {
                // A refusal (an outage, a shutdown): don't spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.record
    }

    /// One whole upload; false when the server refused a step.
    async fn one_upload(&mut self, object_key: &str, with_checksum: bool) -> bool {
        let bytes = payload(object_key);
        let mut body = json!({
            "object_key": object_key,
            "content_type": "application/octet-stream",
            "content_length": bytes.len(),
        });
        if with_checksum {
            body["checksum_sha256"] = STANDARD.encode(Sha256::digest(&bytes)).into();
        }
        let request = self
            .client
            .post(format!("{}/api/upload", self.base))
            .json(&body);
        let Some(grant) = self.call(Route::Upload, request).await else {
            return false;
        };
        let asset_id = grant["asset_id"].as_str().unwrap().to_owned();
        let stored = store(&self.client, &grant["signed_info"], bytes).await;
        let request = self
            .client
            .put(format!("{}/api/status", self.base))
            .json(&json!({ "asset_id": asset_id, "uploaded_status": "complete" }));
        let route = if stored {
            Route::Complete
        } else {
            Route::CompleteMissing
        };
        if self.call(route, request).await.is_none() || !stored {
            return false;
        }
        self.record.completed.push(Completed {
            asset_id: asset_id.clone(),
        });
        let request = self
            .client
            .get(format!("{}/api/access", self.base))
            .query(&[("asset_id", &asset_id)]);
        self.call(Route::Access, request).await.is_some()
    }

    /// Sends `request`, records the outcome, and returns the JSON body of a success.
    async fn call(&mut self, route: Route, request: reqwest::RequestBuilder) -> Option<Value> {
        let started = Instant::now();
        let (answer, body) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let content_type = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                // 409 answers to CompleteMissing count as successes; their body is a problem.
                match response.json::<Value>().await {
                    Ok(body) => {
                        let code = body["code"].as_str().map(str::to_owned);
                        let answer = Answer::Status {
                            status,
                            content_type,
                            code,
                        };
                        (answer, Some(body))
                    }
                    Err(e) => (Answer::Failed(format!("{status}, body: {e}")), None),
                }
            }
            Err(e) if e.is_connect() => (Answer::Refused, None),
            Err(e) => (Answer::Failed(format!("{e:?}")), None),
        };
        let outcome = Outcome {
            route,
            started,
            finished: Instant::now(),
            answer,
        };
        let succeeded = outcome.succeeded();
        self.record.outcomes.push(outcome);
        body.filter(|_| succeeded)
    }
}

/// PUTs the bytes to the signed URL, straight to storage (the server is not involved); false
/// when storage refused them or could not be reached.
async fn store(client: &reqwest::Client, signed: &Value, bytes: Vec<u8>) -> bool {
    assert_eq!(signed["method"], "PUT", "{signed}");
    let mut request = client.put(signed["url"].as_str().unwrap()).body(bytes);
    for (name, value) in signed["headers"].as_object().unwrap() {
        if !matches!(
            name.to_ascii_lowercase().as_str(),
            "content-length" | "host"
        ) {
            request = request.header(name, value.as_str().unwrap());
        }
    }
    request
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}
