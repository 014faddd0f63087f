//! The S3 backend: AWS S3 or any S3-compatible endpoint (MinIO, R2, Ceph) through aws-sdk-s3.
//!
//! Uploads with a declared size are presigned `PUT`s whose signature covers the size, type
//! and checksum, so S3 itself refuses any other body. Uploads without a declared size get a
//! presigned `POST` policy whose `content-length-range` caps the size.

mod credentials;
mod marker;
mod multipart;
mod post_policy;
mod presign;

use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{BucketLocationConstraint, ChecksumMode, CreateBucketConfiguration};
use futures::stream::{self, StreamExt};

use super::digest::HashingCounter;
use super::{
    DownloadSpec, ListedObject, ObjectPages, SignedUpload, Storage, StorageError, StoredObject,
    UploadSpec,
};
use crate::config::StorageSettings;
use crate::domain::Sha256Checksum;
use credentials::CachedCredentials;
use post_policy::PostPolicy;
use presign::{Presign, QuerySigner, checked_expiry};

/// An S3 bucket.
pub struct S3Storage {
    /// Talks to storage from the server (HEAD, GET, bucket checks).
    client: Client,
    /// Signs URLs for clients; differs from `client` only when `public_endpoint` is set.
    presigner: Client,
    bucket: String,
    region: String,
    /// Where browsers and other clients `POST` form uploads.
    post_url: String,
    credentials: CachedCredentials,
    /// Signs the `PUT` and `GET` URLs handed to clients.
    signer: QuerySigner,
    /// `<key_prefix>/.store-id`: never listed; no asset's key can equal it.
    marker_key: String,
}

impl S3Storage {
    /// Builds the clients and, when `create_bucket` is set, creates the bucket if missing.
    pub async fn connect(settings: &StorageSettings) -> anyhow::Result<Self> {
        let s3 = &settings.s3;
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(s3.region.clone()))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
            .load()
            .await;
        Self::connect_with(settings, &shared).await
    }

    /// [`S3Storage::connect`] with the SDK configuration (credentials, region, timeouts)
    /// given, e.g. static credentials in benchmarks.
    pub async fn connect_with(
        settings: &StorageSettings,
        shared: &SdkConfig,
    ) -> anyhow::Result<Self> {
        let s3 = &settings.s3;
        let path_style = s3.force_path_style.unwrap_or(s3.endpoint.is_some());
        let client = Client::from_conf(client_config(shared, s3.endpoint.as_deref(), path_style));
        let public_endpoint = s3.public_endpoint.as_deref().or(s3.endpoint.as_deref());
        let presigner = Client::from_conf(client_config(shared, public_endpoint, path_style));
        let provider = shared
            .credentials_provider()
            .context("no AWS credentials provider is configured")?;
        let storage = Self {
            client,
            presigner,
            bucket: settings.bucket.clone(),
            region: s3.region.clone(),
            post_url: post_url(public_endpoint, &settings.bucket, &s3.region, path_style)?,
            credentials: CachedCredentials::new(provider),
            signer: QuerySigner::new(public_endpoint, &settings.bucket, &s3.region, path_style)?,
            marker_key: super::marker::marker_key(&settings.key_prefix),
        };
        if s3.create_bucket {
            storage.create_bucket_if_missing().await?;
        }
        Ok(storage)
    }

    async fn create_bucket_if_missing(&self) -> anyhow::Result<()> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        let mut request = self.client.create_bucket().bucket(&self.bucket);
        if self.region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => {
                tracing::info!(bucket = %self.bucket, "created bucket");
                Ok(())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
            {
                Ok(())
            }
            Err(e) => Err(anyhow!(aws_sdk_s3::error::DisplayErrorContext(e)))
                .with_context(|| format!("creating bucket {}", self.bucket)),
        }
    }

    /// SHA-256 of the stored bytes, read back from storage (when S3 kept no checksum).
    async fn hash_object(&self, key: &str) -> Result<Sha256Checksum, StorageError> {
        let mut counter = HashingCounter::new();
        self.read_back(key, |chunk| counter.update(chunk)).await?;
        Ok(counter.finish().checksum())
    }

    /// Streams the object under `key` from storage through `feed`, chunk by chunk: the
    /// read-backs of objects (or their parts) whose checksum S3 did not keep.
    async fn read_back(&self, key: &str, mut feed: impl FnMut(&[u8])) -> Result<(), StorageError> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| unavailable(e, "reading the object back"))?;
        let mut body = output.body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| StorageError::Unavailable(anyhow!(e).context("reading the object")))?;
            feed(&chunk);
        }
        Ok(())
    }

    /// The objects of one listing page, without the store's marker.
    fn listed_objects(&self, page: &ListObjectsV2Output) -> Vec<ListedObject> {
        page.contents()
            .iter()
            .filter_map(|object| {
                let (key, modified) = (object.key()?, object.last_modified()?);
                (key != self.marker_key).then(|| ListedObject {
                    storage_key: key.to_owned(),
                    last_modified: chrono::DateTime::from_timestamp(
                        modified.secs(),
                        modified.subsec_nanos(),
                    )
                    .unwrap_or_default(),
                })
            })
            .collect()
    }
}

fn client_config(
    shared: &SdkConfig,
    endpoint: Option<&str>,
    path_style: bool,
) -> aws_sdk_s3::Config {
    let mut builder = aws_sdk_s3::config::Builder::from(shared)
        .force_path_style(path_style)
        // S3-compatible stores reject the CRC checksums newer SDKs add on their own.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    builder.build()
}

/// Where form uploads go: `<endpoint>/<bucket>` in path style, else the bucket's host.
fn post_url(
    endpoint: Option<&str>,
    bucket: &str,
    region: &str,
    path_style: bool,
) -> anyhow::Result<String> {
    let Some(endpoint) = endpoint else {
        return Ok(format!("https://{bucket}.s3.{region}.amazonaws.com/"));
    };
    let mut url = url::Url::parse(endpoint).context("storage.s3.endpoint is not a URL")?;
    if path_style {
        let path = format!("{}/{bucket}", url.path().trim_end_matches('/'));
        url.set_path(&path);
    } else {
        let host = url.host_str().context("storage.s3.endpoint has no host")?;
        let host = format!("{bucket}.{host}");
        url.set_host(Some(&host)).context("bucket host name")?;
    }
    Ok(url.to_string())
}

fn presigning(expires_in: Duration) -> Result<PresigningConfig, StorageError> {
    PresigningConfig::expires_in(expires_in).map_err(|e| StorageError::Other(anyhow!(e)))
}

fn unavailable<E>(error: aws_sdk_s3::error::SdkError<E>, doing: &'static str) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StorageError::Unavailable(anyhow!(aws_sdk_s3::error::DisplayErrorContext(error)).context(doing))
}

#[async_trait]
impl Storage for S3Storage {
    async fn presign_upload(&self, spec: &UploadSpec<'_>) -> Result<SignedUpload, StorageError> {
        let Some(length) = spec.content_length else {
            let credentials = self.credentials.get().await?;
            let policy = PostPolicy {
                bucket: &self.bucket,
                region: &self.region,
                key: spec.storage_key,
                content_type: spec.content_type.map(|c| c.as_str()),
                max_size: spec.max_size,
                expires_in: spec.expires_in,
            };
            return Ok(SignedUpload::Post {
                url: self.post_url.clone(),
                fields: policy.sign(&credentials, std::time::SystemTime::now())?,
            });
        };
        let credentials = self.credentials.get().await?;
        let length = length.to_string();
        // Sorted by name, as signing wants them.
        let mut headers = vec![("content-length", length.as_str())];
        if let Some(content_type) = spec.content_type {
            headers.push(("content-type", content_type.as_str()));
        }
        // A conditional write: the URL cannot replace an object once one is stored, so a
        // complete asset's bytes are frozen (a re-issue removes a pending asset's object).
        headers.push(("if-none-match", "*"));
        if let Some(checksum) = spec.checksum_sha256 {
            headers.push(("x-amz-checksum-sha256", checksum.as_str()));
        }
        let url = self.signer.presign(
            &credentials,
            &Presign {
                method: "PUT",
                operation: "PutObject",
                key: spec.storage_key,
                headers: &headers,
                expires_in: checked_expiry(spec.expires_in)?,
            },
            std::time::SystemTime::now(),
        )?;
        Ok(SignedUpload::Put {
            url,
            headers: headers
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        })
    }

    async fn presign_download(&self, spec: &DownloadSpec<'_>) -> Result<String, StorageError> {
        let credentials = self.credentials.get().await?;
        self.signer.presign(
            &credentials,
            &Presign {
                method: "GET",
                operation: "GetObject",
                key: spec.storage_key,
                headers: &[],
                expires_in: checked_expiry(spec.expires_in)?,
            },
            std::time::SystemTime::now(),
        )
    }

    async fn stat(
        &self,
        storage_key: &str,
        with_checksum: bool,
    ) -> Result<Option<StoredObject>, StorageError> {
        // Checksum mode costs a HEAD nothing, and shows the composite checksum of parts.
        let request = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(storage_key)
            .checksum_mode(ChecksumMode::Enabled);
        let head = match request.send().await {
            Ok(head) => head,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => return Ok(None),
            Err(e) => return Err(unavailable(e, "looking up the object")),
        };
        let size = head
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        // A whole-object SHA-256 is plain base64; one of parts ends in `-<part count>`.
        let reported = head.checksum_sha256();
        let composite_sha256 = reported.filter(|c| c.contains('-')).map(str::to_owned);
        let whole = reported.and_then(|c| Sha256Checksum::parse(c).ok());
        let checksum_sha256 = if with_checksum {
            // A checksum S3 kept from the upload is authoritative; without one, hash the bytes.
            match whole {
                Some(checksum) => Some(checksum),
                None => Some(self.hash_object(storage_key).await?),
            }
        } else {
            None
        };
        Ok(Some(StoredObject {
            size,
            checksum_sha256,
            composite_sha256,
        }))
    }

    async fn delete(&self, storage_key: &str) -> Result<(), StorageError> {
        // S3 answers 204 whether or not the key existed.
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(storage_key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unavailable(e, "deleting the object"))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> ObjectPages<'a> {
        let pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{prefix}/"))
            .into_paginator()
            .send();
        stream::unfold(pages, move |mut pages| async move {
            let page = match pages.next().await? {
                Ok(page) => Ok(self.listed_objects(&page)),
                Err(e) => Err(unavailable(e, "listing objects")),
            };
            Some((page, pages))
        })
        .boxed()
    }

    fn multipart(&self) -> Option<&dyn crate::storage::MultipartStorage> {
        Some(self)
    }

    fn marker(&self) -> Option<&dyn crate::storage::marker::StoreMarker> {
        Some(self)
    }

    async fn check_ready(&self) -> Result<(), StorageError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unavailable(e, "checking the bucket"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_uploads_go_to_the_bucket_url() {
        assert_eq!(
            post_url(Some("http://minio:9000"), "assets", "us-east-1", true).unwrap(),
            "http://minio:9000/assets"
        );
        assert_eq!(
            post_url(
                Some("https://storage.example.com"),
                "assets",
                "eu-west-1",
                false
            )
            .unwrap(),
            "https://assets.storage.example.com/"
        );
        assert_eq!(
            post_url(None, "assets", "eu-west-1", false).unwrap(),
            "https://assets.s3.eu-west-1.amazonaws.com/"
        );
    }
}
