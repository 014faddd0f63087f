//! What a delegated upload token allows: which uploads its holder may issue, and that it may
//! touch only the assets it created.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Asset, AssetStatus, ContentType, ObjectKey};
use crate::config::content_type_matches;

/// The scope a delegated upload token carries, signed into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadScope {
    /// The token's id (its `jti`, not part of the signed scope object); the assets it
    /// creates record it.
    #[serde(skip)]
    pub token_id: Uuid,
    /// Object keys must start with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_key_prefix: Option<String>,
    /// Most uploads the token may issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uploads: Option<u32>,
    /// Largest file, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// Media types uploads may declare (exact or `type/*`); any when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_content_types: Vec<String>,
    /// When the token expires (its `exp`, not part of the signed scope object).
    #[serde(skip)]
    pub expires_at: DateTime<Utc>,
}

/// What a token's holder tried that its scope does not allow, in words for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutOfScope(pub String);

impl UploadScope {
    /// Whether an upload of `object_key`, declaring `content_type` and `content_length`, is
    /// inside the scope. Without a declared length the upload is capped at `max_size` by
    /// storage instead.
    pub fn check_upload(
        &self,
        object_key: &ObjectKey,
        content_type: Option<&ContentType>,
        content_length: Option<u64>,
    ) -> Result<(), OutOfScope> {
        if let Some(prefix) = &self.object_key_prefix
            && !object_key.as_str().starts_with(prefix.as_str())
        {
            return Err(OutOfScope(format!(
                "object_key must start with {prefix:?} for this upload token"
            )));
        }
        if let (Some(max), Some(declared)) = (self.max_size, content_length)
            && declared > max
        {
            return Err(OutOfScope(format!(
                "content_length {declared} exceeds this upload token's max_size of {max} bytes"
            )));
        }
        if !self.allowed_content_types.is_empty() {
            let allowed = self.allowed_content_types.join(", ");
            match content_type {
                None => {
                    return Err(OutOfScope(format!(
                        "content_type is required by this upload token (allowed: {allowed})"
                    )));
                }
                Some(declared)
                    if !content_type_matches(&self.allowed_content_types, declared.as_str()) =>
                {
                    return Err(OutOfScope(format!(
                        "content_type {declared} is not allowed by this upload token (allowed: {allowed})"
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Whether the token may read, complete or sign parts of `asset`: only those it created.
    pub fn check_asset(&self, asset: &Asset) -> Result<(), OutOfScope> {
        if asset.upload_token == Some(self.token_id) {
            Ok(())
        } else {
            Err(OutOfScope(
                "this upload token may only use the assets it created".into(),
            ))
        }
    }

    /// Whether the token may delete `asset`: it aborts its own pending uploads, nothing more.
    pub fn check_abort(&self, asset: &Asset) -> Result<(), OutOfScope> {
        self.check_asset(asset)?;
        if asset.status == AssetStatus::Pending {
            Ok(())
        } else {
            Err(OutOfScope(
                "an upload token may abort pending uploads, not delete complete assets".into(),
            ))
        }
    }

    /// The largest file an upload may be, given the owner's own limit.
    pub fn max_size_within(&self, owner_max: u64) -> u64 {
        self.max_size.map_or(owner_max, |max| max.min(owner_max))
    }
}
