//! `GET /api/assets`, `GET /api/assets/{asset_id}` and `DELETE /api/assets/{asset_id}`: the
//! caller's assets, one asset's metadata, and deletion of an asset with its stored object.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use salvo::http::StatusCode;
use salvo::oapi::{ToParameters, ToSchema, endpoint};
use salvo::prelude::Json;
use salvo::{Depot, Request, Response};
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::query::{self, no_query, parse_query};
use super::{Caller, rfc3339};
use crate::db::AssetFilter;
use crate::domain::{Asset, AssetId, AssetStatus, ValidationError};
use crate::error::{AppError, ProblemDetails};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// Filters and page of `GET /api/assets`.
#[derive(Debug, Deserialize, ToParameters)]
#[serde(deny_unknown_fields)]
#[salvo(parameters(default_parameter_in = Query))]
struct ListQuery {
    /// Only assets in this state.
    #[serde(default, deserialize_with = "query::parsed")]
    status: Option<AssetStatus>,
    /// Only object keys starting with this.
    #[serde(default, deserialize_with = "key_prefix")]
    prefix: Option<String>,
    /// Page size: 1–1000, default 100.
    #[serde(default, deserialize_with = "page_size")]
    #[salvo(parameter(minimum = 1, maximum = 1000))]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A key prefix as `ObjectKey` rules allow it; empty means none.
fn key_prefix<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let prefix = String::deserialize(deserializer)?;
    if prefix.is_empty() {
        return Ok(None);
    }
    crate::domain::parse_key_prefix("prefix", prefix)
        .map(Some)
        .map_err(|e| D::Error::custom(e.reason))
}

fn page_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    String::deserialize(deserializer)?
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("must be between 1 and {MAX_LIMIT}")))
}

/// An asset's metadata.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = AssetInfo))]
struct AssetInfo {
    #[salvo(schema(format = "uuid"))]
    asset_id: String,
    object_key: String,
    status: AssetStatus,
    /// Declared media type.
    content_type: Option<String>,
    /// Declared size in bytes.
    content_length: Option<u64>,
    /// Size found in storage at completion.
    stored_size: Option<u64>,
    /// Declared base64 SHA-256 of the whole file.
    checksum_sha256: Option<String>,
    /// For an asset uploaded in parts with `part_checksums`, once complete: the SHA-256 of
    /// the parts' 32-byte SHA-256 digests concatenated in part order, base64, then `-` and
    /// the number of parts. It is what S3 reports as the object's `ChecksumSHA256` (checksum
    /// type `COMPOSITE`), not the SHA-256 of the file; anyone holding the file computes it
    /// again from `part_size`. Each part was checked against its declared SHA-256.
    #[salvo(schema(example = "ZmIH7sNfL9fYnwL9gqUCbKkYpRAnGvMlqx1pSbNpBBI=-3"))]
    composite_sha256: Option<String>,
    /// Size of every part but the last, with `composite_sha256`.
    part_size: Option<u64>,
    #[salvo(schema(format = DateTime))]
    created_at: String,
    #[salvo(schema(format = DateTime))]
    upload_expires_at: String,
    #[salvo(schema(format = DateTime))]
    completed_at: Option<String>,
}

/// One page of assets.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = AssetPage))]
struct AssetPage {
    items: Vec<AssetInfo>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

impl From<&Asset> for AssetInfo {
    fn from(asset: &Asset) -> Self {
        Self {
            asset_id: asset.id.to_string(),
            object_key: asset.object_key.to_string(),
            status: asset.status,
            content_type: asset.content_type.as_ref().map(ToString::to_string),
            content_length: asset.content_length,
            stored_size: asset.stored_size,
            checksum_sha256: asset.checksum_sha256.as_ref().map(ToString::to_string),
            composite_sha256: asset.composite.as_ref().map(|c| c.sha256.clone()),
            part_size: asset.composite.as_ref().map(|c| c.part_size),
            created_at: rfc3339(asset.created_at),
            upload_expires_at: rfc3339(asset.upload_expires_at),
            completed_at: asset.completed_at.map(rfc3339),
        }
    }
}

/// List the caller's assets, oldest first, a page at a time.
#[endpoint(
    operation_id = "listAssets",
    tags("assets"),
    security(("bearer_token" = []), ("api_key" = [])),
    parameters(ListQuery),
    responses(
        (status_code = 200, description = "A page of assets", body = AssetPage),
        (status_code = 400, description = "A parameter is invalid or the cursor was altered (`validation_failed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database or the rate limiter (`rate_limit_unavailable`) unavailable", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn list_assets(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<AssetPage>, AppError> {
    let caller = Caller::of(depot)?;
    let query: ListQuery = parse_query(req)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    // A delegated upload token lists only the assets it created.
    let mut filter = AssetFilter {
        status: query.status,
        prefix: query.prefix,
        after: None,
        upload_token: caller.scope.as_ref().map(|scope| scope.token_id),
    };
    if let Some(cursor) = &query.cursor {
        filter.after = Some(Cursor::decode(cursor, &filter)?);
    }
    // One more than asked tells whether another page exists.
    let mut assets = caller
        .state
        .assets
        .list(&caller.owner, &filter, limit + 1)
        .await?;
    let next_cursor = if assets.len() > limit as usize {
        assets.truncate(limit as usize);
        assets.last().map(|last| Cursor::encode(last.id, &filter))
    } else {
        None
    };
    Ok(Json(AssetPage {
        items: assets.iter().map(AssetInfo::from).collect(),
        next_cursor,
    }))
}

/// One of the caller's assets.
#[endpoint(
    operation_id = "getAsset",
    tags("assets"),
    security(("bearer_token" = []), ("api_key" = [])),
    parameters(("asset_id" = String, Path, description = "Id of the asset")),
    responses(
        (status_code = 200, description = "The asset's metadata", body = AssetInfo),
        (status_code = 400, description = "`asset_id` is not a UUID (`validation_failed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No such asset (`asset_not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "The delegated upload token did not create this asset, or may not do this to it (`token_scope`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database, storage or the rate limiter (`rate_limit_unavailable`) unavailable", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn get_asset(req: &mut Request, depot: &mut Depot) -> Result<Json<AssetInfo>, AppError> {
    no_query(req)?;
    let caller = Caller::of(depot)?;
    let asset = caller.find_owned(path_id(req)?).await?;
    Ok(Json(AssetInfo::from(&asset)))
}

/// Delete an asset: its stored object first, then its record.
///
/// If storage cannot delete the object, the record stays and the call answers 503, so a
/// record never points at nothing and no object is left untracked once 204 is answered.
#[endpoint(
    operation_id = "deleteAsset",
    status_codes(204, 400, 401, 403, 404, 429, 503),
    tags("assets"),
    security(("bearer_token" = []), ("api_key" = [])),
    parameters(("asset_id" = String, Path, description = "Id of the asset")),
    responses(
        (status_code = 204, description = "Deleted"),
        (status_code = 400, description = "`asset_id` is not a UUID (`validation_failed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No such asset (`asset_not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Storage or database unavailable; nothing was deleted", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "The delegated upload token did not create this asset, or may not do this to it (`token_scope`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn delete_asset(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), AppError> {
    no_query(req)?;
    let caller = Caller::of(depot)?;
    let id = path_id(req)?;
    let asset = caller.find_owned(id).await?;
    if let Some(scope) = &caller.scope {
        scope.check_abort(&asset)?;
    }
    let Caller { state, owner, .. } = caller;
    if let (Some(upload), Some(storage)) = (&asset.multipart, state.storage.multipart()) {
        storage.abort(&asset.storage_key, &upload.upload_id).await?;
    }
    state.storage.delete(&asset.storage_key).await?;
    state
        .assets
        .delete(&owner, id)
        .await?
        .ok_or(AppError::AssetNotFound(id))?;
    state.metrics.asset_deleted();
    tracing::info!(asset_id = %id, "asset deleted");
    res.status_code(StatusCode::NO_CONTENT);
    Ok(())
}

fn path_id(req: &Request) -> Result<AssetId, ValidationError> {
    let id = req.param::<String>("asset_id").unwrap_or_default();
    AssetId::parse(&id)
}

/// Where a listing continues: the last id seen, bound to the filters it was made for and
/// sealed with a digest, so an altered or reused cursor is refused rather than misread.
struct Cursor;

impl Cursor {
    fn encode(after: AssetId, filter: &AssetFilter) -> String {
        let body = Self::body(after, filter);
        let seal = Self::seal(&body);
        URL_SAFE_NO_PAD.encode(format!("{body}|{seal}"))
    }

    fn decode(cursor: &str, filter: &AssetFilter) -> Result<AssetId, ValidationError> {
        let invalid = || {
            ValidationError::new(
                "cursor",
                "is not a cursor from a previous page of this listing",
            )
        };
        let text = URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(invalid)?;
        let (body, seal) = text.rsplit_once('|').ok_or_else(invalid)?;
        let after = body
            .split('|')
            .next()
            .and_then(|id| AssetId::parse(id).ok())
            .ok_or_else(invalid)?;
        if seal != Self::seal(body) || body != Self::body(after, filter) {
            return Err(invalid());
        }
        Ok(after)
    }

    fn body(after: AssetId, filter: &AssetFilter) -> String {
        let status = filter.status.map(|s| s.as_str()).unwrap_or("");
        let prefix = URL_SAFE_NO_PAD.encode(filter.prefix.as_deref().unwrap_or(""));
        format!("{after}|{status}|{prefix}")
    }

    fn seal(body: &str) -> String {
        hex::encode(&Sha256::digest(format!("cloud-asset-uploader cursor v1|{body}"))[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_for_its_own_filter_only() {
        let id = AssetId::generate();
        let filter = AssetFilter {
            status: Some(AssetStatus::Pending),
            prefix: Some("a/".into()),
            ..AssetFilter::default()
        };
        let cursor = Cursor::encode(id, &filter);
        assert_eq!(Cursor::decode(&cursor, &filter).unwrap(), id);
        let other = AssetFilter {
            status: None,
            ..filter.clone()
        };
        assert!(
            Cursor::decode(&cursor, &other).is_err(),
            "a cursor is bound to its filter"
        );
    }

    #[test]
    fn altered_cursors_are_refused() {
        let filter = AssetFilter::default();
        let cursor = Cursor::encode(AssetId::generate(), &filter);
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(&cursor).unwrap()).unwrap();
        let forged = URL_SAFE_NO_PAD.encode(text.replacen(&text[..8], "00000000", 1));
        for (cursor, why) in [
            (forged.as_str(), "another id"),
            ("garbage", "not base64 of a cursor"),
            ("", "empty"),
        ] {
            assert!(Cursor::decode(cursor, &filter).is_err(), "{why}");
        }
    }
}
