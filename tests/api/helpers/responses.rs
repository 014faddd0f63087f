//! What the API answers, as typed values, and the assertions tests make on responses.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::Response;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

/// A successful `POST /api/upload` answer.
#[derive(Debug, Deserialize)]
pub struct UploadGrant {
    pub asset_id: Uuid,
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub signed_info: SignedInfo,
}

/// How to send the file, as the API describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "method")]
pub enum SignedInfo {
    #[serde(rename = "PUT")]
    Put {
        url: String,
        headers: BTreeMap<String, String>,
    },
    #[serde(rename = "POST")]
    Post {
        url: String,
        fields: BTreeMap<String, String>,
    },
}

/// A successful `GET /api/access` answer.
#[derive(Debug, Deserialize)]
pub struct AccessGrant {
    pub asset_id: Uuid,
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

impl SignedInfo {
    pub fn url(&self) -> &str {
        match self {
            Self::Put { url, .. } | Self::Post { url, .. } => url,
        }
    }

    /// The same signed `PUT` with one header replaced, as a client that does not follow the
    /// instructions would send it.
    pub fn with_header(&self, name: &str, value: &str) -> Self {
        let Self::Put { url, headers } = self else {
            panic!("expected a PUT, got {self:?}");
        };
        let mut headers = headers.clone();
        headers.insert(name.to_owned(), value.to_owned());
        Self::Put {
            url: url.clone(),
            headers,
        }
    }

    /// The same request sent to another URL.
    pub fn with_url(&self, new_url: String) -> Self {
        match self.clone() {
            Self::Put { headers, .. } => Self::Put {
                url: new_url,
                headers,
            },
            Self::Post { fields, .. } => Self::Post {
                url: new_url,
                fields,
            },
        }
    }
}

/// Asserts the status and decodes the JSON body, showing the body when either fails.
pub async fn json_with_status<T: DeserializeOwned>(response: Response, status: u16) -> T {
    let actual = response.status().as_u16();
    let text = response.text().await.expect("reading the body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("unexpected body ({e}): {text}"))
}

/// Asserts an RFC 9457 problem with this status and code; returns its body.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    assert_problem_in(response, status, &[code]).await
}

/// [`assert_problem`] where any of `codes` will do, for an outcome that depends on what a
/// backend does of its own (S3 discards a body failing its checksum; the s3s stand-in keeps it).
pub async fn assert_problem_in(response: Response, status: u16, codes: &[&str]) -> Value {
    let content_type = header(&response, "content-type");
    let problem: Value = json_with_status(response, status).await;
    assert_eq!(
        content_type, "application/problem+json",
        "problem: {problem}"
    );
    assert!(
        codes.iter().any(|code| problem["code"] == *code),
        "a code of {codes:?} expected; problem: {problem}"
    );
    assert_eq!(problem["status"], status, "problem: {problem}");
    for field in ["type", "title", "detail"] {
        assert!(
            problem[field].as_str().is_some_and(|v| !v.is_empty()),
            "no {field}: {problem}"
        );
    }
    problem
}

/// A response header as text ("" when absent).
pub fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// Status and body, for assertion messages.
pub async fn describe(response: Response) -> String {
    let status = response.status();
    format!("{status}: {}", response.text().await.unwrap_or_default())
}

/// Asserts the status, showing the body when it differs.
pub async fn assert_status(response: Response, status: u16) {
    if response.status().as_u16() != status {
        panic!("expected {status}, got {}", describe(response).await);
    }
}

/// Asserts a 2xx status (storage answers 200, 201 or 204), showing the body otherwise.
pub async fn assert_success(response: Response) {
    if !response.status().is_success() {
        panic!("expected success, got {}", describe(response).await);
    }
}
