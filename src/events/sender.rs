//! One attempt of one delivery: the signed `POST`.
//!
//! Headers as the Standard Webhooks specification has them: `webhook-id` (the event's id,
//! the same on every attempt, for receivers to deduplicate with), `webhook-timestamp` (this
//! attempt's Unix time) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
//! id.timestamp.body>`, made by the `standardwebhooks` crate receivers verify with).
//! Redirects are not followed (a 3xx is a failed attempt), no proxy is used, and every
//! attempt has `webhooks.attempt_timeout` for connecting, sending and the answer's status.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use url::Url;

use super::target::{self, GuardedResolver};
use crate::config::{EndpointSettings, WebhookSettings};
use crate::db::ClaimedDelivery;

/// A configured endpoint, ready to sign for.
#[derive(Clone)]
pub struct Endpoint {
    pub name: String,
    url: Url,
    signer: Arc<standardwebhooks::Webhook>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL's path and query may be credentials: only the name is shown.
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .finish()
    }
}

impl Endpoint {
    /// The endpoint of (validated) settings.
    pub fn from_settings(settings: &EndpointSettings) -> anyhow::Result<Self> {
        let url = Url::parse(&settings.url).context("webhooks.endpoints: url")?;
        let signer = standardwebhooks::Webhook::from_bytes(settings.secret_bytes())
            .context("webhooks.endpoints: secret")?;
        Ok(Self {
            name: settings.name(),
            url,
            signer: Arc::new(signer),
        })
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered { status_code: u16 },
    /// The receiver answered something else (3xx included: redirects are not followed).
    Rejected { status_code: u16 },
    /// No answer: refused target, connection error, timeout.
    Failed { error: String, refused: bool },
}

/// Sends signed deliveries.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    guarded: bool,
}

impl Sender {
    /// A client for `settings`: guarded against private targets unless they are allowed.
    pub fn new(settings: &WebhookSettings) -> anyhow::Result<Self> {
        let guarded = !settings.allow_private_targets;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(settings.attempt_timeout)
            .connect_timeout(settings.attempt_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("cloud-asset-uploader/", env!("CARGO_PKG_VERSION")));
        if guarded {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Self {
            client: builder
                .build()
                .context("building the webhook HTTP client")?,
            guarded,
        })
    }

    /// POSTs `delivery` to `endpoint`, signed now.
    pub async fn send(&self, endpoint: &Endpoint, delivery: &ClaimedDelivery) -> Attempt {
        if self.guarded
            && let Err(refused) = target::check_literal(&endpoint.url)
        {
            return Attempt::Failed {
                error: refused.to_string(),
                refused: true,
            };
        }
        let id = webhook_id(delivery.event_id);
        let timestamp = chrono::Utc::now().timestamp();
        let signature = match endpoint
            .signer
            .sign(&id, timestamp, delivery.payload.as_bytes())
        {
            Ok(signature) => signature,
            Err(error) => {
                return Attempt::Failed {
                    error: format!("signing: {error}"),
                    refused: false,
                };
            }
        };
        let sent = self
            .client
            .post(endpoint.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, &id)
            .header(
                standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                timestamp.to_string(),
            )
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(delivery.payload.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => Attempt::Delivered {
                status_code: response.status().as_u16(),
            },
            Ok(response) => Attempt::Rejected {
                status_code: response.status().as_u16(),
            },
            Err(error) => {
                let refused = target::refusal_in(&error).is_some();
                let kind = if error.is_timeout() {
                    "timed out"
                } else if error.is_connect() {
                    "could not connect"
                } else {
                    "request failed"
                };
                // Without the URL: its path or query may be a credential.
                let error = error.without_url();
                Attempt::Failed {
                    error: format!("{kind}: {}", crate::error::error_chain(&error)),
                    refused,
                }
            }
        }
    }
}

/// The `webhook-id` of an event: stable across attempts, unique per event.
pub fn webhook_id(event_id: uuid::Uuid) -> String {
    format!("evt_{}", event_id.simple())
}
