//! SigV4 query-string presigning of S3 `PUT` and `GET` URLs, without the SDK's per-call
//! orchestration (operation, interceptors, endpoint resolution: about 30 µs a URL).
//!
//! The signing key depends only on the secret, the day, the region and the service, so it is
//! derived once a day instead of once a URL. The URLs are the ones the SDK's presigner makes,
//! signature included; the tests compare both.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::sign::v4::generate_signing_key;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::storage::StorageError;

/// Everything but RFC 3986's unreserved characters is percent-encoded, as SigV4 requires.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where signed URLs point and how they are signed.
pub struct QuerySigner {
    /// `scheme://host[:port]`.
    origin: String,
    /// The `host` header clients will send: host, and port when not the scheme's default.
    host: String,
    /// Path before the key: `/<bucket>/` in path style, `/` for virtual-hosted buckets.
    path_prefix: String,
    region: String,
    signing_key: Mutex<Option<SigningKey>>,
}

/// A derived signing key and what it was derived from.
struct SigningKey {
    date: String,
    access_key_id: String,
    secret: String,
    key: Vec<u8>,
}

/// A `PUT` or `GET` to sign.
pub struct Presign<'a> {
    pub method: &'a str,
    /// The S3 operation, sent as `x-id` as the SDK does.
    pub operation: &'a str,
    pub key: &'a str,
    /// Headers the client must send, lowercase names, sorted by name, `host` excluded.
    pub headers: &'a [(&'a str, &'a str)],
    pub expires_in: Duration,
}

impl QuerySigner {
    /// Signs URLs for `bucket` at `endpoint` (AWS when `None`).
    pub fn new(
        endpoint: Option<&str>,
        bucket: &str,
        region: &str,
        path_style: bool,
    ) -> anyhow::Result<Self> {
        let default_endpoint = format!("https://s3.{region}.amazonaws.com");
        let url = url::Url::parse(endpoint.unwrap_or(&default_endpoint))?;
        let mut host = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("the S3 endpoint has no host"))?
            .to_owned();
        let base_path = url.path().trim_end_matches('/');
        let path_prefix = if path_style {
            format!("{base_path}/{}/", utf8_percent_encode(bucket, UNRESERVED))
        } else {
            host = format!("{bucket}.{host}");
            format!("{base_path}/")
        };
        if let Some(port) = url.port() {
            host = format!("{host}:{port}");
        }
        Ok(Self {
            origin: format!("{}://{host}", url.scheme()),
            host,
            path_prefix,
            region: region.to_owned(),
            signing_key: Mutex::new(None),
        })
    }

    /// The signed URL for `request`, valid from `now` for `expires_in`.
    pub fn presign(
        &self,
        credentials: &Credentials,
        request: &Presign<'_>,
        now: SystemTime,
    ) -> String {
        let amz_date = DateTime::<Utc>::from(now)
            .format("%Y%m%dT%H%M%SZ")
            .to_string();
        let date = &amz_date[..8];
        let path = format!("{}{}", self.path_prefix, encode_key(request.key));

        let mut signed_headers = String::new();
        let mut canonical_headers = String::new();
        let mut host_written = false;
        for (name, value) in request.headers {
            if !host_written && *name > "host" {
                push_header(
                    &mut signed_headers,
                    &mut canonical_headers,
                    "host",
                    &self.host,
                );
                host_written = true;
            }
            push_header(
                &mut signed_headers,
                &mut canonical_headers,
                name,
                value.trim(),
            );
        }
        if !host_written {
            push_header(
                &mut signed_headers,
                &mut canonical_headers,
                "host",
                &self.host,
            );
        }

        let credential = format!(
            "{}/{date}/{}/s3/aws4_request",
            credentials.access_key_id(),
            self.region
        );
        // Sorted by name, as the canonical query must be.
        let mut query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Date={amz_date}\
             &X-Amz-Expires={}",
            utf8_percent_encode(&credential, UNRESERVED),
            request.expires_in.as_secs()
        );
        if let Some(token) = credentials.session_token() {
            query.push_str("&X-Amz-Security-Token=");
            query.extend(utf8_percent_encode(token, UNRESERVED));
        }
        query.push_str("&X-Amz-SignedHeaders=");
        query.extend(utf8_percent_encode(&signed_headers, UNRESERVED));
        query.push_str("&x-id=");
        query.extend(utf8_percent_encode(request.operation, UNRESERVED));

        let canonical_request = format!(
            "{}\n{path}\n{query}\n{canonical_headers}\n{signed_headers}\nUNSIGNED-PAYLOAD",
            request.method
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{}/s3/aws4_request\n{}",
            self.region,
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let signature = hex::encode(self.sign(credentials, date, now, &string_to_sign));
        format!("{}{path}?{query}&X-Amz-Signature={signature}", self.origin)
    }

    /// HMAC-SHA256 of `string_to_sign` with the day's signing key, derived when the day or
    /// the credentials changed.
    fn sign(
        &self,
        credentials: &Credentials,
        date: &str,
        now: SystemTime,
        string_to_sign: &str,
    ) -> Vec<u8> {
        let mut cached = self
            .signing_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = cached.as_ref().is_some_and(|k| {
            k.date == date
                && k.access_key_id == credentials.access_key_id()
                && k.secret == credentials.secret_access_key()
        });
        if !current {
            let key =
                generate_signing_key(credentials.secret_access_key(), now, &self.region, "s3");
            *cached = Some(SigningKey {
                date: date.to_owned(),
                access_key_id: credentials.access_key_id().to_owned(),
                secret: credentials.secret_access_key().to_owned(),
                key: key.as_ref().to_vec(),
            });
        }
        let key = &cached.as_ref().expect("set above").key;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(string_to_sign.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// `expires_in`, refused beyond SigV4's limit of seven days (configuration stays within it).
pub fn checked_expiry(expires_in: Duration) -> Result<Duration, StorageError> {
    if expires_in.is_zero() || expires_in > Duration::from_secs(604_800) {
        return Err(StorageError::Other(anyhow::anyhow!(
            "a presigned URL must live between 1 second and 7 days, not {expires_in:?}"
        )));
    }
    Ok(expires_in)
}

fn push_header(signed: &mut String, canonical: &mut String, name: &str, value: &str) {
    if !signed.is_empty() {
        signed.push(';');
    }
    signed.push_str(name);
    canonical.push_str(name);
    canonical.push(':');
    canonical.push_str(value);
    canonical.push('\n');
}

/// The key as a URL path: each segment percent-encoded, `/` kept (S3 encodes once).
fn encode_key(key: &str) -> String {
    let mut path = String::with_capacity(key.len() + 16);
    for (i, segment) in key.split('/').enumerate() {
        if i > 0 {
            path.push('/');
        }
        path.extend(utf8_percent_encode(segment, UNRESERVED));
    }
    path
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aws_config::{BehaviorVersion, Region};
    use aws_sdk_s3::presigning::PresigningConfig;

    use super::*;

    const KEY: &str = "uploads/anonymous/0193/a \"quoted\" name+plus/ünï.png";

    /// The presigner the server would otherwise use, configured as `S3Storage` configures it.
    async fn sdk_client(
        endpoint: Option<&str>,
        path_style: bool,
        credentials: &Credentials,
    ) -> aws_sdk_s3::Client {
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(credentials.clone())
            .load()
            .await;
        aws_sdk_s3::Client::from_conf(super::super::client_config(&shared, endpoint, path_style))
    }

    fn query(url: &str) -> BTreeMap<String, String> {
        url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }

    fn config(now: SystemTime) -> PresigningConfig {
        PresigningConfig::builder()
            .start_time(now)
            .expires_in(Duration::from_secs(300))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn urls_match_the_sdk_presigner_signature_included() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cases = [
            (Some("http://127.0.0.1:9000"), true, None),
            (
                Some("https://storage.example.com/base"),
                false,
                Some("session-token/+="),
            ),
            (None, false, None),
        ];
        for (endpoint, path_style, token) in cases {
            let credentials =
                Credentials::new("AKID", "secret", token.map(str::to_owned), None, "test");
            let sdk = sdk_client(endpoint, path_style, &credentials).await;
            let signer = QuerySigner::new(endpoint, "assets", "eu-west-1", path_style).unwrap();

            let expected = sdk
                .put_object()
                .bucket("assets")
                .key(KEY)
                .content_length(48_213)
                .content_type("image/png")
                .checksum_sha256("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
                .presigned(config(now))
                .await
                .unwrap();
            let headers = [
                ("content-length", "48213"),
                ("content-type", "image/png"),
                (
                    "x-amz-checksum-sha256",
                    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
                ),
            ];
            let put = signer.presign(
                &credentials,
                &Presign {
                    method: "PUT",
                    operation: "PutObject",
                    key: KEY,
                    headers: &headers,
                    expires_in: Duration::from_secs(300),
                },
                now,
            );
            let (expected_base, _) = expected.uri().split_once('?').unwrap();
            assert_eq!(
                put.split_once('?').unwrap().0,
                expected_base,
                "{endpoint:?}"
            );
            assert_eq!(query(&put), query(expected.uri()), "{endpoint:?}");

            let expected = sdk
                .get_object()
                .bucket("assets")
                .key(KEY)
                .presigned(config(now))
                .await
                .unwrap();
            let get = signer.presign(
                &credentials,
                &Presign {
                    method: "GET",
                    operation: "GetObject",
                    key: KEY,
                    headers: &[],
                    expires_in: Duration::from_secs(300),
                },
                now,
            );
            assert_eq!(query(&get), query(expected.uri()), "{endpoint:?}");
        }
    }

    #[test]
    fn the_signing_key_follows_the_day_and_the_credentials() {
        let signer =
            QuerySigner::new(Some("http://127.0.0.1:9000"), "assets", "us-east-1", true).unwrap();
        let a = Credentials::new("AKID", "secret-a", None, None, "test");
        let b = Credentials::new("AKID", "secret-b", None, None, "test");
        let day = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let next_day = day + Duration::from_secs(86_400);
        let first = signer.sign(&a, "20231114", day, "x");
        assert_eq!(signer.sign(&a, "20231114", day, "x"), first);
        assert_ne!(signer.sign(&b, "20231114", day, "x"), first);
        assert_ne!(signer.sign(&a, "20231115", next_day, "x"), first);
    }
}
