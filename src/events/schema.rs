//! The event payload as the OpenAPI document shows it: one versioned schema, `AssetEventV1`,
//! under `webhooks` (OpenAPI 3.1) with the Standard Webhooks headers. The body itself is built
//! in SQL (`db::events`); a test holds the two together. Fields are only ever added to
//! version 1; a change that is not an addition would be a new version and a new schema.

use salvo::oapi::{
    Content, OpenApi, Operation, Parameter, ParameterIn, PathItem, PathItemType, RequestBody,
    Required, Response, ToSchema,
};
use serde::Serialize;

/// What happened.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = AssetEventType))]
#[allow(dead_code, reason = "documents the payload; the body is built in SQL")]
enum AssetEventType {
    /// A pending asset was issued (a re-issue of the same key emits nothing).
    #[serde(rename = "asset.created")]
    Created,
    /// The asset was completed after storage was verified.
    #[serde(rename = "asset.completed")]
    Completed,
    /// The asset was deleted through the API (or its Uppy upload aborted).
    #[serde(rename = "asset.deleted")]
    Deleted,
    /// The sweeper removed the pending asset long after its upload URL expired.
    #[serde(rename = "asset.expired")]
    Expired,
}

/// The asset as it was right after the change.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = AssetEventData))]
#[allow(dead_code, reason = "documents the payload; the body is built in SQL")]
struct AssetEventData {
    /// The asset's id.
    #[salvo(schema(format = "uuid"))]
    asset_id: String,
    owner: String,
    object_key: String,
    bucket: String,
    /// Where the bytes are (or were) in `bucket`.
    storage_key: String,
    /// Bytes stored (complete assets), or the declared length; null when neither is known.
    size: Option<u64>,
    content_type: Option<String>,
    /// Base64 SHA-256 declared for the upload, if any.
    checksum_sha256: Option<String>,
    /// For an upload in parts signed with their SHA-256, once complete: the parts' composite
    /// checksum (`<base64>-<part count>`, see `GET /api/assets/{asset_id}`).
    composite_sha256: Option<String>,
    /// RFC 3339, UTC.
    #[salvo(schema(format = DateTime))]
    created_at: String,
    /// RFC 3339, UTC; null unless the asset is complete.
    #[salvo(schema(format = DateTime))]
    completed_at: Option<String>,
}

/// Body of every webhook request, version 1.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = AssetEventV1))]
#[allow(dead_code, reason = "documents the payload; the body is built in SQL")]
struct AssetEventV1 {
    #[serde(rename = "type")]
    event_type: AssetEventType,
    /// When the change committed (RFC 3339, UTC).
    timestamp: String,
    data: AssetEventData,
}

/// Adds the webhook receivers implement to `doc`: `POST` of an `AssetEventV1`.
pub fn add_webhook(doc: OpenApi) -> OpenApi {
    let mut components = doc.components.clone();
    let schema = <AssetEventV1 as ToSchema>::to_schema(&mut components);
    let header = |name: &str, description: &str| {
        Parameter::new(name)
            .location(ParameterIn::Header)
            .required(Required::True)
            .description(description)
    };
    let operation = Operation::new()
        .operation_id("assetEvent")
        .summary("An asset changed")
        .description(
            "Sent to each configured `webhooks.endpoints` entry subscribed to the event's type, \
             at least once: deduplicate by `webhook-id`. Verify `webhook-signature` with any \
             Standard Webhooks library and the endpoint's `whsec_` secret. Answer 2xx within \
             `webhooks.attempt_timeout`; anything else (redirects included) is retried with \
             exponential backoff.",
        )
        .add_parameter(header(
            "webhook-id",
            "The event's id (`evt_…`), the same on every attempt",
        ))
        .add_parameter(header(
            "webhook-timestamp",
            "Unix time of this attempt, in seconds",
        ))
        .add_parameter(header(
            "webhook-signature",
            "`v1,<base64 HMAC-SHA256 of \"{webhook-id}.{webhook-timestamp}.{body}\">`",
        ))
        .request_body(
            RequestBody::new()
                .required(Required::True)
                .add_content("application/json", Content::new(schema)),
        )
        .add_response("200", Response::new("Received (any 2xx)"));
    doc.components(components)
        .add_webhook("assetEvent", PathItem::new(PathItemType::Post, operation))
}
