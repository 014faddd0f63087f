//! Finding an asset by its storage key, the `key` Uppy knows an upload by. Part of
//! [`AssetRepository`].

use tokio_postgres::types::Type;

use super::assets::{COLUMNS, asset_from_row};
use super::{AssetRepository, DbError};
use crate::domain::{Asset, Owner};

impl AssetRepository {
    /// The owner's asset stored in `bucket` under `storage_key`, if any (the pair is unique,
    /// and its index serves the lookup).
    pub async fn find_by_storage_key(
        &self,
        owner: &Owner,
        bucket: &str,
        storage_key: &str,
    ) -> Result<Option<Asset>, DbError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM assets WHERE owner = $1 AND storage_key = $2 AND bucket = $3"
        );
        let conn = self.pool.get().await?;
        let row = conn
            .query_typed_opt(
                &sql,
                &[
                    (&owner.as_str(), Type::TEXT),
                    (&storage_key, Type::TEXT),
                    (&bucket, Type::TEXT),
                ],
            )
            .await?;
        row.as_ref().map(asset_from_row).transpose()
    }
}
