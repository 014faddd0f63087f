//! An asset: one object a client uploads once and downloads many times.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ContentType, ObjectKey, Owner, Sha256Checksum, ValidationError};

/// An asset's id: a UUIDv7, so ids are unguessable yet sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AssetId(Uuid);

impl AssetId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        Uuid::parse_str(value)
            .map(Self)
            .map_err(|_| ValidationError::new("asset_id", "must be a UUID"))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl FromStr for AssetId {
    type Err = ValidationError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::parse(value)
    }
}

impl From<Uuid> for AssetId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an asset is in its life: `pending` until its upload is verified in storage, then
/// `complete`. Completion is one-way.
// `ToSchema` here, so that the API's parameters and bodies show the two values, not free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, salvo::oapi::ToSchema)]
#[serde(rename_all = "lowercase")]
#[salvo(schema(name = AssetStatus))]
pub enum AssetStatus {
    /// An upload URL was issued; the bytes may or may not be in storage yet.
    Pending,
    /// The bytes were verified in storage; download URLs may be issued.
    Complete,
}

impl AssetStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Complete => "complete",
        }
    }
}

impl FromStr for AssetStatus {
    type Err = ValidationError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "pending" => Ok(Self::Pending),
            "complete" => Ok(Self::Complete),
            _ => Err(ValidationError::new(
                "uploaded_status",
                "must be \"complete\" or \"pending\"",
            )),
        }
    }
}

impl fmt::Display for AssetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored record of an asset.
#[derive(Debug, Clone)]
pub struct Asset {
    pub id: AssetId,
    pub owner: Owner,
    pub object_key: ObjectKey,
    /// Full key of the object in the bucket: `<key_prefix>/<owner>/<asset_id>/<object_key>`.
    pub storage_key: String,
    pub bucket: String,
    pub status: AssetStatus,
    pub content_type: Option<ContentType>,
    pub content_length: Option<u64>,
    pub checksum_sha256: Option<Sha256Checksum>,
    pub stored_size: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub upload_expires_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Set while the bytes are uploaded in parts.
    pub multipart: Option<MultipartUpload>,
    /// Of an asset completed from parts declared with their SHA-256: the composite checksum
    /// of the parts ([`super::composite_sha256`]) and their size.
    pub composite: Option<CompositeChecksum>,
    /// The delegated upload token that created the asset, if one did.
    pub upload_token: Option<Uuid>,
}

/// A multipart upload in progress: the storage service's id for it and the size of each part
/// (the last one may be smaller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUpload {
    pub upload_id: String,
    pub part_size: u64,
    /// Each part is signed with the SHA-256 the client declares for it (`part_checksums`).
    pub part_checksums: bool,
}

/// What an asset uploaded in parts with `part_checksums` records at completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompositeChecksum {
    /// `<base64 SHA-256 of the part digests>-<part count>`, as S3 reports it.
    pub sha256: String,
    /// Size of every part but the last.
    pub part_size: u64,
}

impl MultipartUpload {
    /// How many parts `total` bytes make.
    pub fn part_count(&self, total: u64) -> u32 {
        u32::try_from(total.div_ceil(self.part_size).max(1)).unwrap_or(u32::MAX)
    }

    /// The size of part `number` (1-based) of `total` bytes.
    pub fn part_len(&self, number: u32, total: u64) -> u64 {
        let start = u64::from(number - 1) * self.part_size;
        total.saturating_sub(start).min(self.part_size)
    }
}

/// The key under which an asset's bytes are stored. The asset id in the path keeps keys
/// unique even when an owner reuses an object key after deleting it.
pub fn storage_key(prefix: &str, owner: &Owner, id: AssetId, object_key: &ObjectKey) -> String {
    format!("{prefix}/{}/{id}/{object_key}", owner.storage_segment())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_total_with_a_smaller_last_part() {
        let upload = MultipartUpload {
            upload_id: "u".into(),
            part_size: 5,
            part_checksums: false,
        };
        assert_eq!(upload.part_count(12), 3);
        assert_eq!([1, 2, 3].map(|n| upload.part_len(n, 12)), [5, 5, 2]);
        assert_eq!(
            upload.part_count(10),
            2,
            "an exact multiple needs no extra part"
        );
        assert_eq!(upload.part_len(2, 10), 5);
    }

    #[test]
    fn storage_keys_nest_owner_and_id_under_the_prefix() {
        let id = AssetId::parse("0190a5b4-0000-7000-8000-000000000001").unwrap();
        let key = ObjectKey::parse("photos/cat.png").unwrap();
        assert_eq!(
            storage_key("uploads", &Owner::anonymous(), id, &key),
            "uploads/anonymous/0190a5b4-0000-7000-8000-000000000001/photos/cat.png"
        );
    }

    #[test]
    fn statuses_parse_only_from_their_names() {
        assert_eq!(
            "complete".parse::<AssetStatus>().unwrap(),
            AssetStatus::Complete
        );
        assert_eq!(
            "pending".parse::<AssetStatus>().unwrap(),
            AssetStatus::Pending
        );
        for bad in ["Complete", "done", ""] {
            assert!(bad.parse::<AssetStatus>().is_err(), "{bad:?}");
        }
    }
}
