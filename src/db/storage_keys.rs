//! Finding an asset by its storage key: the `key` Uppy knows an upload by, and the object
//! storage reports (notifications, the local storage routes). Part of [`AssetRepository`].

use std::sync::LazyLock;

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
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM assets WHERE owner = $1 AND storage_key = $2 AND bucket = $3"
            )
        });
        let conn = self.pool.get().await?;
        let row = conn
            .query_typed_opt(
                &SQL,
                &[
                    (&owner.as_str(), Type::TEXT),
                    (&storage_key, Type::TEXT),
                    (&bucket, Type::TEXT),
                ],
            )
            .await?;
        row.as_ref().map(asset_from_row).transpose()
    }

    /// The asset stored in `bucket` under `storage_key`, whoever owns it: what storage
    /// reports (a notification, a request to the local storage routes) names objects, not
    /// owners.
    pub async fn find_stored_under(
        &self,
        bucket: &str,
        storage_key: &str,
    ) -> Result<Option<Asset>, DbError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {COLUMNS} FROM assets WHERE bucket = $1 AND storage_key = $2")
        });
        let conn = self.pool.get().await?;
        let row = conn
            .query_typed_opt(&SQL, &[(&bucket, Type::TEXT), (&storage_key, Type::TEXT)])
            .await?;
        row.as_ref().map(asset_from_row).transpose()
    }
}
