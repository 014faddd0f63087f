//! `POST /api/upload-tokens`: an owner mints a short-lived token for a browser, scoped to
//! the uploads the browser may make (see `auth::upload_token`).

use salvo::http::StatusCode;
use salvo::oapi::{ToSchema, endpoint};
use salvo::prelude::Json;
use salvo::{Depot, Request, Response};
use serde::{Deserialize, Serialize};

use super::query::no_query;
use super::{Caller, expiry, json::read_json, rfc3339};
use crate::config::{Settings, is_content_type_pattern};
use crate::domain::{OutOfScope, UploadScope, ValidationError, parse_key_prefix};
use crate::error::{AppError, ProblemDetails};

/// Most uploads one token may be given.
const MAX_UPLOADS: u32 = 10_000;

/// What the token may do; every field is optional and narrows it further.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = UploadTokenRequest, example = json!({
    "expires_in": 900,
    "object_key_prefix": "users/42/",
    "max_uploads": 10,
    "max_size": 10485760,
    "allowed_content_types": ["image/*"]
})))]
struct UploadTokenRequest {
    /// Lifetime of the token in seconds (default `upload_tokens.default_expires_in`, at most
    /// `upload_tokens.max_expires_in`).
    #[salvo(schema(minimum = 1))]
    expires_in: Option<u64>,
    /// Object keys of its uploads must start with this.
    #[salvo(schema(min_length = 1, max_length = 1024))]
    object_key_prefix: Option<String>,
    /// Most uploads it may issue (re-issuing one of its own pending uploads is not counted).
    #[salvo(schema(minimum = 1, maximum = 10000))]
    max_uploads: Option<u32>,
    /// Largest file in bytes (at most the owner's `uploads.max_size`).
    #[salvo(schema(minimum = 1))]
    max_size: Option<u64>,
    /// Media types its uploads may declare, exact or `type/*`; declaring one becomes required.
    allowed_content_types: Option<Vec<String>>,
}

/// What a token allows.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = UploadTokenScope))]
struct ScopeInfo {
    object_key_prefix: Option<String>,
    max_uploads: Option<u32>,
    max_size: Option<u64>,
    allowed_content_types: Vec<String>,
}

/// A minted token.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = UploadTokenResponse))]
struct UploadTokenResponse {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    /// The token's id; the assets it creates are bound to it.
    #[salvo(schema(format = "uuid"))]
    token_id: String,
    /// The owner the token acts for.
    owner: String,
    /// When the token stops working (RFC 3339).
    #[salvo(schema(format = DateTime))]
    expires_at: String,
    scope: ScopeInfo,
}

impl UploadTokenRequest {
    /// The scope asked for, checked against what the owner itself may do.
    fn scope(self, settings: &Settings, owner_max_size: u64) -> Result<UploadScope, AppError> {
        let object_key_prefix = self
            .object_key_prefix
            .map(|prefix| parse_key_prefix("object_key_prefix", prefix))
            .transpose()?;
        if let Some(max) = self.max_uploads
            && !(1..=MAX_UPLOADS).contains(&max)
        {
            return Err(ValidationError::new(
                "max_uploads",
                format!("must be between 1 and {MAX_UPLOADS}"),
            )
            .into());
        }
        if let Some(max) = self.max_size
            && !(1..=owner_max_size).contains(&max)
        {
            return Err(ValidationError::new(
                "max_size",
                format!("must be between 1 and {owner_max_size} (uploads.max_size)"),
            )
            .into());
        }
        let allowed_content_types = self.allowed_content_types.unwrap_or_default();
        for pattern in &allowed_content_types {
            let concrete = !pattern.ends_with("/*");
            if !is_content_type_pattern(pattern)
                || (concrete && !settings.uploads.allows_content_type(pattern))
            {
                return Err(ValidationError::new(
                    "allowed_content_types",
                    format!("{pattern:?} is not a media type or wildcard this server allows"),
                )
                .into());
            }
        }
        Ok(UploadScope {
            token_id: uuid::Uuid::nil(),
            object_key_prefix,
            max_uploads: self.max_uploads,
            max_size: self.max_size,
            allowed_content_types,
            expires_at: chrono::DateTime::default(),
        })
    }
}

/// Mint a delegated upload token for a browser.
///
/// The caller (authenticated as an owner in any `auth.mode`) gets a short-lived token that
/// may issue, send, complete and abort uploads within the scope given, and read back only
/// the assets it created. It is verified without a database round trip; it is revoked only
/// by expiring, so keep lifetimes short.
#[endpoint(
    tags("upload tokens"),
    operation_id = "createUploadToken",
    security(("bearer_token" = []), ("api_key" = [])),
    request_body = UploadTokenRequest,
    responses(
        (status_code = 201, description = "A new token", body = UploadTokenResponse),
        (status_code = 400, description = "A field is invalid (`validation_failed`) or the body is not JSON (`malformed_body`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 403, description = "Upload tokens are disabled (`upload_tokens_disabled`), or the caller itself holds an upload token (`token_scope`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 413, description = "The body exceeds 64 KiB (`body_too_large`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 415, description = "The body is not `application/json` (`unsupported_media_type`)", content_type = "application/problem+json", body = ProblemDetails),
        (status_code = 503, description = "Database, storage or the rate limiter unavailable (`rate_limit_unavailable` with `rate_limit.redis.on_error = \"deny\"`)", content_type = "application/problem+json", body = ProblemDetails),
    )
)]
pub async fn create_upload_token(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), AppError> {
    no_query(req)?;
    let Caller {
        state,
        owner,
        scope,
    } = Caller::of(depot)?;
    if scope.is_some() {
        return Err(OutOfScope("an upload token cannot mint upload tokens".into()).into());
    }
    let tokens = state
        .upload_tokens
        .clone()
        .ok_or(AppError::UploadTokensDisabled)?;
    let body = read_json::<UploadTokenRequest>(req, &state.settings).await?;
    let lifetime = expiry(
        body.expires_in,
        tokens.default_expires_in,
        tokens.max_expires_in,
    )?;
    let owner_max_size = state.settings.uploads.limits_for(&owner).max_size;
    let scope = body.scope(&state.settings, owner_max_size)?;
    let minted = tokens
        .mint(&owner, scope, lifetime)
        .map_err(AppError::Internal)?;
    tracing::info!(token_id = %minted.scope.token_id, "minted an upload token");
    let scope = minted.scope;
    res.status_code(StatusCode::CREATED);
    res.render(Json(UploadTokenResponse {
        token: minted.token,
        token_id: scope.token_id.to_string(),
        owner: owner.as_str().to_owned(),
        expires_at: rfc3339(scope.expires_at),
        scope: ScopeInfo {
            object_key_prefix: scope.object_key_prefix,
            max_uploads: scope.max_uploads,
            max_size: scope.max_size,
            allowed_content_types: scope.allowed_content_types,
        },
    }));
    Ok(())
}
