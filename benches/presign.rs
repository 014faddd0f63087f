//! Presigning cost of each backend, without any network: the S3 clients get static
//! credentials and an endpoint, and presigning is pure computation (SigV4 or the local HMAC).
//!
//! `cargo bench --bench presign`

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use cloud_asset_uploader::config::{Settings, StorageBackend};
use cloud_asset_uploader::domain::{ContentType, Sha256Checksum};
use cloud_asset_uploader::storage::local::LocalStorage;
use cloud_asset_uploader::storage::s3::S3Storage;
use cloud_asset_uploader::storage::{DownloadSpec, Storage, UploadSpec};
use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::SecretString;
use tokio::runtime::Runtime;

const KEY: &str = "uploads/anonymous/01936f0e-4a9b-7c3e-9f51-2d7c0a8b6e42/photos/cat.png";

fn s3_storage(runtime: &Runtime) -> Arc<dyn Storage> {
    let mut settings = Settings::default();
    settings.storage.backend = StorageBackend::S3;
    settings.storage.s3.endpoint = Some("http://127.0.0.1:9000".into());
    runtime.block_on(async {
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "AKIDBENCHMARK",
                "benchmark-secret-key",
                None,
                None,
                "static",
            ))
            .load()
            .await;
        Arc::new(
            S3Storage::connect_with(&settings.storage, &shared)
                .await
                .expect("building the S3 client"),
        ) as Arc<dyn Storage>
    })
}

fn local_storage() -> Arc<dyn Storage> {
    let mut settings = Settings::default();
    settings.storage.local.root = std::env::temp_dir().join("cau-presign-bench");
    settings.storage.local.signing_key = Some(SecretString::from(
        "benchmark-signing-key-0123456789abcdef".to_owned(),
    ));
    let public_url = url::Url::parse("http://127.0.0.1:8080").unwrap();
    Arc::new(LocalStorage::open(&settings, &public_url).expect("opening local storage"))
}

fn presign(c: &mut Criterion) {
    let runtime = Runtime::new().expect("a tokio runtime");
    let content_type = ContentType::parse("image/png").unwrap();
    let checksum = Sha256Checksum::parse("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").unwrap();
    let put = UploadSpec {
        storage_key: KEY,
        content_type: Some(&content_type),
        content_length: Some(48_213),
        checksum_sha256: Some(&checksum),
        max_size: 5 << 30,
        expires_in: Duration::from_secs(300),
    };
    let form = UploadSpec {
        content_length: None,
        checksum_sha256: None,
        ..put.clone()
    };
    let get = DownloadSpec {
        storage_key: KEY,
        content_type: Some(&content_type),
        expires_in: Duration::from_secs(300),
    };

    let s3 = s3_storage(&runtime);
    let local = local_storage();
    let mut group = c.benchmark_group("presign");
    group.bench_function("s3/put", |b| {
        b.to_async(&runtime).iter(|| s3.presign_upload(&put))
    });
    group.bench_function("s3/post_policy", |b| {
        b.to_async(&runtime).iter(|| s3.presign_upload(&form))
    });
    group.bench_function("s3/get", |b| {
        b.to_async(&runtime).iter(|| s3.presign_download(&get))
    });
    group.bench_function("local/put", |b| {
        b.to_async(&runtime).iter(|| local.presign_upload(&put))
    });
    group.bench_function("local/get", |b| {
        b.to_async(&runtime).iter(|| local.presign_download(&get))
    });
    group.finish();
}

criterion_group!(benches, presign);
criterion_main!(benches);
