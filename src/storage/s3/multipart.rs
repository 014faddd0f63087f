//! Multipart uploads on S3: started by the server, each part a presigned `PUT` whose signed
//! `content-length` makes S3 refuse a part of any other size, assembled by the server.
//!
//! With part checksums, the upload is started with the SHA-256 algorithm and each part URL
//! also signs the part's `x-amz-checksum-sha256`: S3 refuses other bytes (`BadDigest`),
//! lists each part's checksum, and checks them again at completion.

use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};

use super::{S3Storage, presigning, unavailable};
use crate::domain::{ContentType, Sha256Checksum};
use crate::storage::digest::PartHasher;
use crate::storage::{
    CompleteError, MultipartStorage, PartRef, PartSpec, PresignedPart, StorageError, StoredPart,
};

#[async_trait]
impl MultipartStorage for S3Storage {
    async fn start(
        &self,
        storage_key: &str,
        content_type: Option<&ContentType>,
        part_checksums: bool,
    ) -> Result<String, StorageError> {
        let mut request = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(storage_key);
        if let Some(content_type) = content_type {
            request = request.content_type(content_type.as_str());
        }
        if part_checksums {
            // S3's checksum type for SHA-256 parts is `COMPOSITE`, its default for them.
            request = request.checksum_algorithm(ChecksumAlgorithm::Sha256);
        }
        let output = request
            .send()
            .await
            .map_err(|e| unavailable(e, "starting a multipart upload"))?;
        output
            .upload_id()
            .map(str::to_owned)
            .ok_or_else(|| StorageError::Other(anyhow!("storage returned no upload id")))
    }

    async fn presign_part(
        &self,
        storage_key: &str,
        upload_id: &str,
        part: &PartSpec<'_>,
        expires_in: Duration,
    ) -> Result<PresignedPart, StorageError> {
        let presigned = self
            .presigner
            .upload_part()
            .bucket(&self.bucket)
            .key(storage_key)
            .upload_id(upload_id)
            .part_number(i32::try_from(part.number).unwrap_or(i32::MAX))
            .content_length(i64::try_from(part.size).unwrap_or(i64::MAX))
            .set_checksum_sha256(part.checksum_sha256.map(|c| c.as_str().to_owned()))
            .presigned(presigning(expires_in)?)
            .await
            .map_err(|e| StorageError::Other(anyhow!(aws_sdk_s3::error::DisplayErrorContext(e))))?;
        // The length is the body's own; what else was signed the client sends as given.
        let headers = presigned
            .headers()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
            .collect();
        Ok(PresignedPart {
            url: presigned.uri().to_owned(),
            headers,
        })
    }

    async fn list_parts(
        &self,
        storage_key: &str,
        upload_id: &str,
    ) -> Result<Vec<StoredPart>, StorageError> {
        let mut pages = self
            .client
            .list_parts()
            .bucket(&self.bucket)
            .key(storage_key)
            .upload_id(upload_id)
            .into_paginator()
            .send();
        let mut parts = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| unavailable(e, "listing uploaded parts"))?;
            for part in page.parts() {
                let Some(number) = part.part_number() else {
                    continue;
                };
                parts.push(StoredPart {
                    part_number: u32::try_from(number).unwrap_or(0),
                    etag: part.e_tag().map(str::to_owned),
                    size: part.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    checksum_sha256: part
                        .checksum_sha256()
                        .and_then(|c| Sha256Checksum::parse(c).ok()),
                });
            }
        }
        Ok(parts)
    }

    async fn complete(
        &self,
        storage_key: &str,
        upload_id: &str,
        parts: &[PartRef],
    ) -> Result<(), CompleteError> {
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|part| {
                        CompletedPart::builder()
                            .part_number(i32::try_from(part.part_number).unwrap_or(i32::MAX))
                            .e_tag(&part.etag)
                            .set_checksum_sha256(
                                part.checksum_sha256.as_ref().map(|c| c.as_str().to_owned()),
                            )
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let result = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(storage_key)
            .upload_id(upload_id)
            .multipart_upload(completed)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => {
                let code = error
                    .as_service_error()
                    .and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e))
                    .map(str::to_owned);
                let message = error
                    .as_service_error()
                    .and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::message(e))
                    .unwrap_or("storage refused the parts")
                    .to_owned();
                match code.as_deref() {
                    Some("NoSuchUpload") => Err(CompleteError::UploadGone),
                    Some(
                        "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" | "InvalidRequest"
                        | "InvalidArgument",
                    ) => Err(CompleteError::Rejected(format!(
                        "{}: {message}",
                        code.unwrap_or_default()
                    ))),
                    _ => Err(CompleteError::Storage(unavailable(
                        error,
                        "completing a multipart upload",
                    ))),
                }
            }
        }
    }

    async fn hash_parts(
        &self,
        storage_key: &str,
        part_size: u64,
    ) -> Result<Vec<Sha256Checksum>, StorageError> {
        let mut parts = PartHasher::new(part_size);
        self.read_back(storage_key, |chunk| parts.update(chunk))
            .await?;
        Ok(parts.finish())
    }

    async fn abort(&self, storage_key: &str, upload_id: &str) -> Result<(), StorageError> {
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(storage_key)
            .upload_id(upload_id)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_upload()) => Ok(()),
            Err(e) => Err(unavailable(e, "aborting a multipart upload")),
        }
    }
}
