//! The SQL of multipart uploads. Part of [`AssetRepository`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio_postgres::types::Type;

use super::assets::to_i64;
use super::{AssetRepository, DbError};
use crate::domain::{AssetId, MultipartUpload, Owner, Sha256Checksum};

impl AssetRepository {
    /// Records (or, with `None`, forgets) the multipart upload of a pending asset, dropping
    /// the part checksums declared for an earlier one.
    pub async fn set_multipart(
        &self,
        owner: &Owner,
        id: AssetId,
        multipart: Option<&MultipartUpload>,
    ) -> Result<(), DbError> {
        let upload_id = multipart.map(|m| m.upload_id.as_str());
        let part_size = multipart.map(|m| to_i64(m.part_size));
        let part_checksums = multipart.is_some_and(|m| m.part_checksums);
        let conn = self.pool.get().await?;
        conn.query_typed(
            "WITH upload AS ( \
                 UPDATE assets SET multipart_upload_id = $3, part_size = $4, part_checksums = $5 \
                 WHERE id = $1 AND owner = $2 AND status = 'pending' \
                 RETURNING id) \
             DELETE FROM upload_parts WHERE asset_id IN (SELECT id FROM upload)",
            &[
                (&id.as_uuid(), Type::UUID),
                (&owner.as_str(), Type::TEXT),
                (&upload_id, Type::TEXT),
                (&part_size, Type::INT8),
                (&part_checksums, Type::BOOL),
            ],
        )
        .await?;
        Ok(())
    }

    /// Records the SHA-256 the client declares for each of `parts` of a pending asset's
    /// upload (replacing an earlier declaration of the same part), before their URLs are
    /// signed with it. The caller has found the asset among the owner's.
    pub async fn declare_parts(
        &self,
        id: AssetId,
        parts: &[(u32, Sha256Checksum)],
    ) -> Result<(), DbError> {
        let numbers: Vec<i32> = parts
            .iter()
            .map(|(n, _)| i32::try_from(*n).unwrap_or(i32::MAX))
            .collect();
        let checksums: Vec<&str> = parts.iter().map(|(_, c)| c.as_str()).collect();
        let conn = self.pool.get().await?;
        conn.query_typed(
            "INSERT INTO upload_parts (asset_id, part_number, checksum_sha256) \
             SELECT $1, number, checksum FROM unnest($2::int4[], $3::text[]) AS p (number, checksum) \
             ON CONFLICT (asset_id, part_number) \
                 DO UPDATE SET checksum_sha256 = EXCLUDED.checksum_sha256",
            &[
                (&id.as_uuid(), Type::UUID),
                (&numbers, Type::INT4_ARRAY),
                (&checksums, Type::TEXT_ARRAY),
            ],
        )
        .await?;
        Ok(())
    }

    /// The part checksums declared for an asset's upload, by part number.
    pub async fn declared_parts(
        &self,
        id: AssetId,
    ) -> Result<BTreeMap<u32, Sha256Checksum>, DbError> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query_typed(
                "SELECT part_number, checksum_sha256 FROM upload_parts WHERE asset_id = $1",
                &[(&id.as_uuid(), Type::UUID)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let corrupt = || DbError::Corrupt("upload_parts".to_owned());
                let number: i32 = row.try_get("part_number")?;
                let checksum: String = row.try_get("checksum_sha256")?;
                Ok((
                    u32::try_from(number).map_err(|_| corrupt())?,
                    Sha256Checksum::parse(&checksum).map_err(|_| corrupt())?,
                ))
            })
            .collect()
    }

    /// Pushes a pending asset's upload expiry out to `until` (never earlier), as signing more
    /// parts keeps the upload alive for the sweeper.
    pub async fn extend_upload(
        &self,
        owner: &Owner,
        id: AssetId,
        until: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let conn = self.pool.get().await?;
        conn.query_typed(
            "UPDATE assets SET upload_expires_at = greatest(upload_expires_at, $3) \
             WHERE id = $1 AND owner = $2 AND status = 'pending'",
            &[
                (&id.as_uuid(), Type::UUID),
                (&owner.as_str(), Type::TEXT),
                (&until, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
        Ok(())
    }
}
