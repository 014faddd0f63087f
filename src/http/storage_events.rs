//! `POST /api/storage-events`: the object store reports new objects, and each pending asset
//! stored under a reported key is completed exactly as `PUT /api/status` completes it.
//!
//! Accepted bodies: S3 event notifications (`{"Records": [...]}`, as S3 sends them to SQS,
//! SNS or Lambda and as MinIO's webhook target POSTs them), S3 events through EventBridge
//! (`{"detail-type": "Object Created", "detail": {...}}`), and S3's `s3:TestEvent`. What the
//! notification says about the object (size, ETag) is never believed: storage is asked.

use percent_encoding::percent_decode_str;
use salvo::http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use salvo::oapi::{ToSchema, endpoint};
use salvo::prelude::Json;
use salvo::{Depot, Request, Response};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::json::read_json;
use crate::auth::{AuthError, strip_bearer};
use crate::domain::{Asset, AssetStatus, ValidationError};
use crate::error::{AppError, ProblemDetails};
use crate::state::AppState;

/// A storage notification: S3's `Records`, or one EventBridge event.
#[derive(Debug, Deserialize, ToSchema)]
#[salvo(schema(name = StorageNotification, example = json!({
    "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": { "name": "assets" },
            "object": {
                "key": "uploads/alice/01936f0e-4a9b-7c3e-9f51-2d7c0a8b6e42/photos/cat.jpg",
                "size": 48213
            }
        }
    }]
})))]
struct StorageNotification {
    /// S3 event notification records (S3, SQS, SNS, MinIO).
    #[serde(rename = "Records")]
    records: Option<Vec<S3Record>>,
    /// EventBridge: `Object Created` (other types are ignored).
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    /// EventBridge: the object.
    detail: Option<EventBridgeDetail>,
    /// `s3:TestEvent`, sent by S3 when notifications are configured (ignored).
    #[serde(rename = "Event")]
    event: Option<String>,
}

/// One record of an S3 event notification; its other fields are ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[salvo(schema(name = S3EventRecord))]
struct S3Record {
    /// `ObjectCreated:*` (MinIO: `s3:ObjectCreated:*`) completes; other events are ignored.
    #[serde(rename = "eventName")]
    event_name: String,
    s3: Option<S3Entity>,
}

/// The bucket and object of a record.
#[derive(Debug, Deserialize, ToSchema)]
#[salvo(schema(name = S3EventEntity))]
struct S3Entity {
    bucket: BucketName,
    object: ObjectName,
}

/// The `detail` of an EventBridge S3 event.
#[derive(Debug, Deserialize, ToSchema)]
#[salvo(schema(name = EventBridgeS3Detail))]
struct EventBridgeDetail {
    bucket: BucketName,
    object: ObjectName,
}

#[derive(Debug, Deserialize, ToSchema)]
#[salvo(schema(name = S3EventBucket))]
struct BucketName {
    name: String,
}

/// The object; `size`, `eTag` and the rest are ignored (storage is asked instead).
#[derive(Debug, Deserialize, ToSchema)]
#[salvo(schema(name = S3EventObject))]
struct ObjectName {
    /// The key, URL-encoded in S3 notifications (`red+flower.jpg`).
    key: String,
}

/// An object the notification says was created.
#[derive(Debug)]
struct CreatedObject {
    bucket: String,
    /// The key as reported.
    reported_key: String,
}

impl CreatedObject {
    /// The keys the object may have: the reported key URL-decoded (`+` is a space), as S3
    /// and MinIO encode keys in notifications, and the reported key itself.
    fn candidate_keys(&self) -> Vec<String> {
        let plus_as_space = self.reported_key.replace('+', " ");
        let decoded = percent_decode_str(&plus_as_space)
            .decode_utf8()
            .ok()
            .map(|key| key.into_owned());
        let mut keys: Vec<String> = decoded.into_iter().collect();
        if !keys.contains(&self.reported_key) {
            keys.push(self.reported_key.clone());
        }
        // No asset's key holds a NUL (object keys refuse control characters), and Postgres
        // text cannot carry one.
        keys.retain(|key| !key.contains('\0'));
        keys
    }
}

impl StorageNotification {
    /// The objects created, and how many records reported something else.
    fn created_objects(self) -> Result<(Vec<CreatedObject>, usize), ValidationError> {
        if let Some(records) = self.records {
            let mut created = Vec::new();
            let mut other = 0;
            for (index, record) in records.into_iter().enumerate() {
                let name = record.event_name.trim_start_matches("s3:");
                if !name.starts_with("ObjectCreated:") {
                    other += 1;
                    continue;
                }
                let Some(entity) = record.s3 else {
                    return Err(ValidationError::new(
                        format!("Records[{index}].s3"),
                        "an ObjectCreated record names its bucket and object in `s3`",
                    ));
                };
                created.push(CreatedObject {
                    bucket: entity.bucket.name,
                    reported_key: entity.object.key,
                });
            }
            return Ok((created, other));
        }
        if let Some(detail_type) = self.detail_type {
            if detail_type != "Object Created" {
                return Ok((Vec::new(), 1));
            }
            let Some(detail) = self.detail else {
                return Err(ValidationError::new(
                    "detail",
                    "an EventBridge `Object Created` event names its bucket and object in `detail`",
                ));
            };
            let created = CreatedObject {
                bucket: detail.bucket.name,
                reported_key: detail.object.key,
            };
            return Ok((vec![created], 0));
        }
        if self.event.is_some() {
            return Ok((Vec::new(), 1));
        }
        Err(ValidationError::new(
            "Records",
            "not an S3 event notification: expected `Records` (S3, SQS, SNS, MinIO) or \
             `detail-type` and `detail` (EventBridge)",
        ))
    }
}

/// What came of one reported object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[salvo(schema(name = StorageEventOutcome))]
enum Outcome {
    /// Storage holds what was declared: the asset is now complete.
    Completed,
    /// The asset was complete already (a repeated notification, or the client completed it).
    AlreadyComplete,
    /// Storage does not hold what was declared (missing, another size or checksum): the
    /// asset stays pending, and the reason is logged.
    LeftPending,
    /// Uploaded in parts: the client completes it with its parts' ETags (`PUT /api/status`).
    Multipart,
    /// No asset is stored under this key.
    UnknownKey,
    /// Another bucket than `storage.bucket`.
    OtherBucket,
    /// A key outside `storage.key_prefix`.
    OutsidePrefix,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::AlreadyComplete => "already_complete",
            Self::LeftPending => "left_pending",
            Self::Multipart => "multipart",
            Self::UnknownKey => "unknown_key",
            Self::OtherBucket => "other_bucket",
            Self::OutsidePrefix => "outside_prefix",
        }
    }
}

/// One reported object and what came of it.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = StorageEventResult))]
struct ObjectResult {
    bucket: String,
    /// The key as reported.
    key: String,
    outcome: Outcome,
    /// The asset stored under the key, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[salvo(schema(value_type = Option<uuid::Uuid>))]
    asset_id: Option<String>,
    /// Why a `left_pending` asset was not completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// What the notification did.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = StorageEventsResponse))]
struct StorageEventsResponse {
    /// Assets completed by this notification.
    completed: usize,
    /// Records about something else than a created object (ignored).
    ignored_records: usize,
    /// Each created object reported, in order.
    objects: Vec<ObjectResult>,
}

/// Complete pending assets from storage's notifications of new objects.
///
/// For the object store, not for clients: authenticated with `storage_events.token` as a
/// bearer token, and served only when that is set. Each `ObjectCreated` record for
/// `storage.bucket` under `storage.key_prefix` completes the pending asset stored under its
/// key, after storage is asked what it holds (the notification's size and ETag are not
/// believed). Unknown keys, other buckets, complete assets and objects that do not match
/// their declaration are answered 200 and reported in `objects`: sending the notification
/// again changes nothing. A 503 (database or storage unavailable) asks the sender to retry.
#[endpoint(
    operation_id = "receiveStorageEvents",
    tags("storage events"),
    security(("storage_events_token" = [])),
    request_body = StorageNotification,
    responses(
        (status_code = 200, description = "Every record handled; what came of each object in `objects`", body = StorageEventsResponse),
        (status_code = 400, description = "Not a storage notification (`validation_failed`) or not JSON (`malformed_body`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 401, description = "Missing or wrong token (`unauthorized`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 413, description = "Larger than 64 KiB (`body_too_large`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 415, description = "The body is not `application/json`", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database or storage unavailable: send the notification again", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn receive_storage_events(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<Json<StorageEventsResponse>, AppError> {
    let state = AppState::from_depot(depot)?.clone();
    if let Err(error) = check_token(&state, req) {
        res.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"cloud-asset-uploader\""),
        );
        return Err(AppError::Unauthorized(error));
    }
    let notification: StorageNotification = read_json(req, &state.settings).await?;
    let (created, ignored_records) = notification.created_objects()?;
    let mut objects = Vec::with_capacity(created.len());
    for object in created {
        let result = complete_reported(&state, object).await?;
        state.metrics.storage_event(result.outcome.as_str());
        objects.push(result);
    }
    Ok(Json(StorageEventsResponse {
        completed: objects
            .iter()
            .filter(|o| o.outcome == Outcome::Completed)
            .count(),
        ignored_records,
        objects,
    }))
}

/// Refuses a request without the configured bearer token; the comparison of digests takes
/// the same time wherever (and whether) they differ.
fn check_token(state: &AppState, req: &Request) -> Result<(), AuthError> {
    let Some(expected) = &state.settings.storage_events.token else {
        return Err(AuthError::Invalid);
    };
    let header = req.headers().get(AUTHORIZATION).ok_or(AuthError::Missing)?;
    let given = header
        .to_str()
        .ok()
        .and_then(strip_bearer)
        .ok_or(AuthError::Invalid)?;
    let expected = Sha256::digest(expected.expose_secret().as_bytes());
    let given = Sha256::digest(given.as_bytes());
    if bool::from(expected.ct_eq(&given)) {
        Ok(())
    } else {
        Err(AuthError::Invalid)
    }
}

/// Completes the asset stored under `object`'s key, if it is pending; errors only when the
/// database or storage could not answer (the sender then retries).
async fn complete_reported(
    state: &AppState,
    object: CreatedObject,
) -> Result<ObjectResult, AppError> {
    let settings = &state.settings.storage;
    let mut result = ObjectResult {
        bucket: object.bucket.clone(),
        key: object.reported_key.clone(),
        outcome: Outcome::UnknownKey,
        asset_id: None,
        reason: None,
    };
    if object.bucket != settings.bucket {
        result.outcome = Outcome::OtherBucket;
        return Ok(result);
    }
    let prefix = format!("{}/", settings.key_prefix);
    let keys: Vec<String> = object
        .candidate_keys()
        .into_iter()
        .filter(|key| key.starts_with(&prefix))
        .collect();
    if keys.is_empty() {
        result.outcome = Outcome::OutsidePrefix;
        return Ok(result);
    }
    let mut found = None;
    for key in &keys {
        found = state.assets.find_stored_under(&object.bucket, key).await?;
        if found.is_some() {
            break;
        }
    }
    let Some(asset) = found else {
        tracing::debug!(bucket = %object.bucket, "storage reported an object no asset is stored under");
        return Ok(result);
    };
    result.asset_id = Some(asset.id.to_string());
    let (outcome, reason) = complete_pending(state, &asset).await?;
    result.outcome = outcome;
    result.reason = reason;
    Ok(result)
}

/// Completes `asset` as `PUT /api/status` would, unless it is complete already or uploaded
/// in parts; a refusal by verification leaves it pending, logged, with its reason.
async fn complete_pending(
    state: &AppState,
    asset: &Asset,
) -> Result<(Outcome, Option<String>), AppError> {
    if asset.status == AssetStatus::Complete {
        return Ok((Outcome::AlreadyComplete, None));
    }
    if asset.multipart.is_some() {
        return Ok((Outcome::Multipart, None));
    }
    match super::status::complete_asset(state, asset, Vec::new()).await {
        Ok(completed) if completed.status == AssetStatus::Complete => {
            Ok((Outcome::Completed, None))
        }
        Ok(_) => Ok((Outcome::LeftPending, None)),
        Err(refused @ (AppError::UploadNotFound | AppError::UploadMismatch(_))) => {
            let reason = refused.to_string();
            tracing::warn!(asset_id = %asset.id, reason = %reason, "storage reported an object that does not match its asset; the asset stays pending");
            Ok((Outcome::LeftPending, Some(reason)))
        }
        // Deleted meanwhile.
        Err(AppError::AssetNotFound(_)) => Ok((Outcome::UnknownKey, None)),
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<(Vec<CreatedObject>, usize), ValidationError> {
        serde_json::from_value::<StorageNotification>(json)
            .expect("a notification")
            .created_objects()
    }

    #[test]
    fn s3_and_minio_records_report_created_objects_and_skip_others() {
        let (created, other) = parse(serde_json::json!({
            "EventName": "s3:ObjectCreated:Put",
            "Records": [
                { "eventName": "ObjectCreated:Put", "s3": { "bucket": { "name": "a" }, "object": { "key": "k1", "size": 3 } } },
                { "eventName": "s3:ObjectCreated:CompleteMultipartUpload", "s3": { "bucket": { "name": "a" }, "object": { "key": "k2" } } },
                { "eventName": "ObjectRemoved:Delete", "s3": { "bucket": { "name": "a" }, "object": { "key": "k3" } } },
            ]
        }))
        .unwrap();
        let keys: Vec<&str> = created.iter().map(|c| c.reported_key.as_str()).collect();
        assert_eq!(keys, ["k1", "k2"]);
        assert_eq!(other, 1);
    }

    #[test]
    fn eventbridge_object_created_is_one_object_and_test_events_none() {
        let (created, other) = parse(serde_json::json!({
            "version": "0", "detail-type": "Object Created", "source": "aws.s3",
            "detail": { "bucket": { "name": "b" }, "object": { "key": "x y", "size": 1, "etag": "e" }, "reason": "PutObject" }
        }))
        .unwrap();
        assert_eq!(
            (
                created[0].bucket.as_str(),
                created[0].reported_key.as_str(),
                other
            ),
            ("b", "x y", 0)
        );
        let (created, other) =
            parse(serde_json::json!({
            "detail-type": "Object Deleted",
            "detail": { "bucket": { "name": "b" }, "object": { "key": "k" }, "deletion-type": "Permanently Deleted" }
        })).unwrap();
        assert!(created.is_empty() && other == 1);
        let (created, other) = parse(
            serde_json::json!({ "Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b" }),
        )
        .unwrap();
        assert!(created.is_empty() && other == 1);
    }

    #[test]
    fn anything_else_is_refused_with_the_field_to_fix() {
        assert_eq!(
            parse(serde_json::json!({ "hello": 1 })).unwrap_err().field,
            "Records"
        );
        let error = parse(serde_json::json!({ "Records": [{ "eventName": "ObjectCreated:Put" }] }))
            .unwrap_err();
        assert_eq!(error.field, "Records[0].s3");
    }

    #[test]
    fn reported_keys_are_tried_url_decoded_first_then_as_they_are() {
        let object = |key: &str| CreatedObject {
            bucket: "b".into(),
            reported_key: key.into(),
        };
        assert_eq!(
            object("red+flower%281%29.jpg").candidate_keys(),
            ["red flower(1).jpg", "red+flower%281%29.jpg"]
        );
        assert_eq!(object("plain/key.txt").candidate_keys(), ["plain/key.txt"]);
        assert_eq!(object("bad%ff").candidate_keys(), ["bad%ff"]);
        assert!(object("nul%00").candidate_keys() == ["nul%00"]);
        assert!(object("nul\u{0}").candidate_keys().is_empty());
    }
}
