//! The SQL of multipart uploads. Part of [`AssetRepository`].

use chrono::{DateTime, Utc};
use tokio_postgres::types::Type;

use super::assets::to_i64;
use super::{AssetRepository, DbError};
use crate::domain::{AssetId, MultipartUpload, Owner};

impl AssetRepository {
    /// Records (or, with `None`, forgets) the multipart upload of a pending asset.
    pub async fn set_multipart(
        &self,
        owner: &Owner,
        id: AssetId,
        multipart: Option<&MultipartUpload>,
    ) -> Result<(), DbError> {
        let upload_id = multipart.map(|m| m.upload_id.as_str());
        let part_size = multipart.map(|m| to_i64(m.part_size));
        let conn = self.pool.get().await?;
        conn.query_typed(
            "UPDATE assets SET multipart_upload_id = $3, part_size = $4 \
             WHERE id = $1 AND owner = $2 AND status = 'pending'",
            &[
                (&id.as_uuid(), Type::UUID),
                (&owner.as_str(), Type::TEXT),
                (&upload_id, Type::TEXT),
                (&part_size, Type::INT8),
            ],
        )
        .await?;
        Ok(())
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
