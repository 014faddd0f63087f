//! Types that validate when they are parsed, so handlers, SQL and storage only ever see
//! values that are known to be good ("parse, don't validate"), and the percent-encode sets
//! ([`percent`]) that turn them into storage keys and URLs.

mod asset;
mod checksum;
mod content_type;
mod object_key;
mod owner;
pub mod percent;
mod upload_scope;

pub use asset::{Asset, AssetId, AssetStatus, CompositeChecksum, MultipartUpload, storage_key};
pub use checksum::{Sha256Checksum, composite_sha256};
pub use content_type::ContentType;
pub use object_key::{MAX_OBJECT_KEY_BYTES, ObjectKey, parse_key_prefix};
pub use owner::Owner;
pub use upload_scope::{OutOfScope, UploadScope};

/// A value that failed to parse: which field, and why, in words a client can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: String,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
