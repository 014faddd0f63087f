//! The local backend's store marker: the file `<root>/<bucket>/<key_prefix>/.store-id`.

use anyhow::anyhow;
use async_trait::async_trait;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::{LocalStorage, object_path};
use crate::storage::StorageError;
use crate::storage::marker::StoreMarker;

#[async_trait]
impl StoreMarker for LocalStorage {
    fn marker_location(&self) -> String {
        self.directory.join(&self.marker_key).display().to_string()
    }

    async fn read_marker(&self) -> Result<Option<Vec<u8>>, StorageError> {
        let read = async {
            self.store
                .get(&object_path(&self.marker_key))
                .await?
                .bytes()
                .await
        };
        match read.await {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StorageError::Unavailable(
                anyhow!(e).context("reading the store marker"),
            )),
        }
    }

    async fn create_marker(&self, contents: &str) -> Result<bool, StorageError> {
        // PutMode::Create writes a staging file and hard-links it into place: the marker
        // appears whole or not at all, and only if no file has that name.
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let payload = PutPayload::from(contents.to_owned());
        match self
            .store
            .put_opts(&object_path(&self.marker_key), payload, options)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(StorageError::Unavailable(
                anyhow!(e).context("writing the store marker"),
            )),
        }
    }
}
