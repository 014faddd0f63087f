//! Black-box tests of the HTTP API, against real Postgres and S3 (MinIO) in containers.
//!
//! One binary, so the containers start once: see `helpers` for `spawn_app`, which gives each
//! test its own server, database and bucket (or storage directory). The containers need a
//! running Docker engine; `UPLOADER_TEST_POSTGRES_IMAGE` and `UPLOADER_TEST_MINIO_IMAGE`
//! (`name:tag`) replace the public images, e.g. with local stand-ins on an offline machine.

mod access;
mod auth;
mod binary;
mod cors;
mod database;
mod events;
mod frozen;
mod health;
mod helpers;
mod http_layer;
mod lifecycle;
mod limits;
mod local_completion;
mod local_downloads;
mod local_forms;
mod local_multipart;
mod local_storage;
mod metrics;
mod multipart;
mod openapi;
mod ownership;
mod query_plans;
mod quotas;
mod rate_limits;
mod replicas;
mod s3_storage;
mod signed_urls;
mod slow_uploads;
mod status;
mod storage_events;
mod store_identity;
mod tls;
mod upload;
mod upload_tokens;
mod upload_validation;
mod uppy;
mod web;
mod webhooks;
