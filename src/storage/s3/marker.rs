//! The S3 backend's store marker: the object `<key_prefix>/.store-id` in the bucket.
//!
//! It is created with a conditional `PUT` (`If-None-Match: *`), which S3, MinIO and the s3s
//! stand-in honour: of two servers creating it at once, one gets 412 and reads the other's.

use anyhow::anyhow;
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;

use super::{S3Storage, unavailable};
use crate::storage::StorageError;
use crate::storage::marker::StoreMarker;

#[async_trait]
impl StoreMarker for S3Storage {
    fn marker_location(&self) -> String {
        format!("bucket {}, key {}", self.bucket, self.marker_key)
    }

    async fn read_marker(&self) -> Result<Option<Vec<u8>>, StorageError> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.marker_key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(unavailable(e, "reading the store marker")),
        };
        let bytes = output.body.collect().await.map_err(|e| {
            StorageError::Unavailable(anyhow!(e).context("reading the store marker"))
        })?;
        Ok(Some(bytes.to_vec()))
    }

    async fn create_marker(&self, contents: &str) -> Result<bool, StorageError> {
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&self.marker_key)
            .content_type("text/plain; charset=utf-8")
            .if_none_match("*")
            .body(ByteStream::from(contents.as_bytes().to_vec()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(false),
            Err(e) => Err(unavailable(e, "writing the store marker")),
        }
    }
}
