//! `GET /api/access`: a signed download URL for a complete asset.

use salvo::oapi::{ToParameters, ToSchema, endpoint};
use salvo::prelude::Json;
use salvo::{Depot, Request};
use serde::{Deserialize, Serialize};

use super::query::{self, parse_query};
use super::{Caller, expiry, rfc3339};
use crate::domain::{AssetId, AssetStatus};
use crate::error::{AppError, ProblemDetails};
use crate::storage::DownloadSpec;

/// Which asset, and for how long.
#[derive(Debug, Deserialize, ToParameters)]
#[serde(deny_unknown_fields)]
#[salvo(parameters(default_parameter_in = Query))]
struct AccessQuery {
    /// Id returned by `POST /api/upload`.
    #[serde(deserialize_with = "query::required")]
    #[salvo(parameter(value_type = String, format = "uuid"))]
    asset_id: AssetId,
    /// Lifetime of the URL in seconds (default `access.default_expires_in`, at most
    /// `access.max_expires_in`).
    #[serde(default, deserialize_with = "query::number")]
    #[salvo(parameter(minimum = 1))]
    expires_in: Option<u64>,
}

/// A signed download URL.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = AccessResponse))]
struct AccessResponse {
    #[salvo(schema(format = "uuid"))]
    asset_id: String,
    /// `GET` this URL to download the asset.
    url: String,
    /// When the URL stops working (RFC 3339).
    #[salvo(schema(format = DateTime))]
    expires_at: String,
}

/// Issue a signed download URL for a complete asset.
#[endpoint(
    operation_id = "issueAccess",
    tags("assets"),
    security(("bearer_token" = []), ("api_key" = [])),
    parameters(AccessQuery),
    responses(
        (status_code = 200, description = "A signed download URL", body = AccessResponse),
        (status_code = 400, description = "A parameter is invalid (`validation_failed`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 404, description = "No such asset (`asset_not_found`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 409, description = "The upload is not complete (`asset_not_complete`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database, storage or the rate limiter (`rate_limit_unavailable`) unavailable", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "The delegated upload token did not create this asset, or may not do this to it (`token_scope`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn presign_access(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<AccessResponse>, AppError> {
    let caller = Caller::of(depot)?;
    let query: AccessQuery = parse_query(req)?;
    let id = query.asset_id;
    let access = &caller.state.settings.access;
    let expires_in = expiry(
        query.expires_in,
        access.default_expires_in,
        access.max_expires_in,
    )?;

    let asset = caller.find_owned(id).await?;
    if asset.status != AssetStatus::Complete {
        return Err(AppError::AssetNotComplete);
    }
    let expires_at = super::now_plus(expires_in);
    let url = caller
        .state
        .storage
        .presign_download(&DownloadSpec {
            storage_key: &asset.storage_key,
            content_type: asset.content_type.as_ref(),
            expires_in,
        })
        .await?;
    Ok(Json(AccessResponse {
        asset_id: id.to_string(),
        url,
        expires_at: rfc3339(expires_at),
    }))
}
