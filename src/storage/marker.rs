//! The store marker: a small object at `<key_prefix>/.store-id` holding the id of the store,
//! written once when the store is first created or adopted (see `storage::identity`).
//!
//! Asset objects live at `<key_prefix>/<owner>/<asset_id>/<object_key>`, and the owner segment
//! is percent-encoded (a `.` becomes `%2E`), so no asset's storage key can equal the marker's
//! or start with it: the marker cannot be addressed through any object key.

use async_trait::async_trait;
use uuid::Uuid;

use super::StorageError;

/// Name of the marker object, directly under `storage.key_prefix`.
pub const MARKER_NAME: &str = ".store-id";

/// The storage key of the marker of the store under `key_prefix`.
pub fn marker_key(key_prefix: &str) -> String {
    format!("{key_prefix}/{MARKER_NAME}")
}

/// What a marker holds: the store id and a line saying what the file is, for whoever finds it.
pub fn marker_contents(id: Uuid) -> String {
    format!(
        "{id}\n# cloud-asset-uploader store id; its database records the same id. Do not edit or delete.\n"
    )
}

/// The store id in a marker's contents, or `None` when they are not a marker's.
pub fn parse_marker(contents: &[u8]) -> Option<Uuid> {
    let text = std::str::from_utf8(contents).ok()?;
    Uuid::parse_str(text.lines().next()?.trim()).ok()
}

/// What a store's marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerState {
    /// No marker: a new store, or not the store it should be (an empty volume, another bucket).
    Missing,
    /// Something is there but it is not a marker.
    Unreadable,
    Present(Uuid),
}

impl MarkerState {
    /// The state of a marker read as `contents` (`None`: nothing there).
    pub fn from_contents(contents: Option<&[u8]>) -> Self {
        match contents {
            None => Self::Missing,
            Some(bytes) => parse_marker(bytes).map_or(Self::Unreadable, Self::Present),
        }
    }
}

/// Reading and creating a store's marker; both backends offer it.
#[async_trait]
pub trait StoreMarker: Send + Sync {
    /// Where the marker lives, for logs and operators: an absolute path, or bucket and key.
    fn marker_location(&self) -> String;

    /// The marker's raw contents, or `None` when the store has none.
    async fn read_marker(&self) -> Result<Option<Vec<u8>>, StorageError>;

    /// Writes `contents` as the marker unless one exists (create-if-absent, so two servers
    /// creating it at once cannot both win). `false` when a marker already existed.
    async fn create_marker(&self, contents: &str) -> Result<bool, StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AssetId, ObjectKey, Owner, storage_key};

    #[test]
    fn a_marker_holds_its_id() {
        let id = Uuid::new_v4();
        assert_eq!(parse_marker(marker_contents(id).as_bytes()), Some(id));
        assert_eq!(
            MarkerState::from_contents(Some(marker_contents(id).as_bytes())),
            MarkerState::Present(id)
        );
        assert_eq!(MarkerState::from_contents(None), MarkerState::Missing);
        assert_eq!(
            MarkerState::from_contents(Some(b"not an id\n")),
            MarkerState::Unreadable
        );
        assert_eq!(
            MarkerState::from_contents(Some(&[0xff, 0xfe])),
            MarkerState::Unreadable
        );
    }

    #[test]
    fn no_asset_key_reaches_the_marker() {
        let id = AssetId::generate();
        let owners = [".store-id", ".", "..", "%2E", "a/.store-id", "anonymous"];
        let keys = [".store-id", "a/.store-id", "..store-id", "x"];
        for prefix in ["uploads", "a/b"] {
            let marker = marker_key(prefix);
            for owner in owners {
                for key in keys {
                    let key = ObjectKey::parse(key).unwrap();
                    let stored = storage_key(prefix, &Owner::new(owner), id, &key);
                    assert_ne!(stored, marker, "owner {owner:?}, key {key}");
                    assert!(
                        !stored.starts_with(&format!("{marker}/")),
                        "owner {owner:?}, key {key}: {stored}"
                    );
                    // The segment after the prefix is the owner's, and it never starts with '.'.
                    let after_prefix = &stored[prefix.len() + 1..];
                    assert!(!after_prefix.starts_with('.'), "{stored}");
                }
            }
        }
    }
}
