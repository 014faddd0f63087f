//! Asset events and their delivery to webhook endpoints.
//!
//! Events are written by the statements that change assets (see `db::events`): an event
//! exists exactly when its change committed. Each configured endpoint subscribed to the
//! event's type gets a delivery row in the same statement; the [`Dispatcher`] of every
//! replica claims due deliveries and POSTs them, signed as Standard Webhooks specify.
//!
//! - [`dispatcher`]: the claim → attempt → record loop, backoff, pruning, queue gauges.
//! - [`sender`]: one signed HTTP attempt.
//! - [`target`]: which addresses a delivery may connect to (no private ones by default).
//! - [`cli`]: the `events list` and `events retry` commands.
//! - [`schema`]: the payload as documented in the OpenAPI document (`webhooks`).

pub mod cli;
pub mod dispatcher;
pub mod schema;
pub mod sender;
pub mod target;

use std::str::FromStr;

pub use dispatcher::Dispatcher;

use crate::config::WebhookSettings;

/// What happened to an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A pending asset was issued (`POST /api/upload`, Uppy); a re-issue emits nothing.
    Created,
    /// A pending asset was completed after storage was verified.
    Completed,
    /// An asset was deleted through the API (or its Uppy upload aborted).
    Deleted,
    /// The sweeper removed a pending asset whose upload URL had long expired.
    Expired,
}

impl EventType {
    /// Every event type, in the order of an asset's life.
    pub const ALL: [Self; 4] = [Self::Created, Self::Completed, Self::Deleted, Self::Expired];

    /// The `type` of the payload.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "asset.created",
            Self::Completed => "asset.completed",
            Self::Deleted => "asset.deleted",
            Self::Expired => "asset.expired",
        }
    }
}

impl FromStr for EventType {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|t| t.as_str() == text).ok_or(())
    }
}

/// For each event type, the names of the endpoints subscribed to it: what the statements
/// that change assets fan each event out to. Empty everywhere when no endpoint is configured,
/// and then no event is recorded at all.
#[derive(Debug, Clone, Default)]
pub struct Subscriptions {
    by_type: [Vec<String>; 4],
}

impl Subscriptions {
    /// The subscriptions of the configured endpoints.
    pub fn from_settings(settings: &WebhookSettings) -> Self {
        let by_type = EventType::ALL.map(|event_type| {
            settings
                .endpoints
                .iter()
                .filter(|endpoint| endpoint.wants(event_type))
                .map(|endpoint| endpoint.name())
                .collect()
        });
        Self { by_type }
    }

    /// Names of the endpoints `event_type` goes to.
    pub fn endpoints(&self, event_type: EventType) -> &Vec<String> {
        &self.by_type[event_type as usize]
    }
}
