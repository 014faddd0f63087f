//! SigV4 query-string presigning of S3 `PUT` and `GET` URLs with aws-sigv4 directly, without
//! the SDK's per-call orchestration (operation, interceptors, endpoint resolution: about 30 µs
//! a URL). The URLs are the ones the SDK's presigner makes, signature included; the tests
//! compare both.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use percent_encoding::utf8_percent_encode;

use crate::domain::percent::UNRESERVED;
use crate::storage::StorageError;

/// Where signed URLs point and how they are signed.
pub struct QuerySigner {
    /// `scheme://host[:port]`.
    origin: String,
    /// Path before the key: `/<bucket>/` in path style, `/` for virtual-hosted buckets.
    path_prefix: String,
    region: String,
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
            path_prefix,
            region: region.to_owned(),
        })
    }

    /// The signed URL for `request`, valid from `now` for `expires_in`.
    pub fn presign(
        &self,
        credentials: &Credentials,
        request: &Presign<'_>,
        now: SystemTime,
    ) -> Result<String, StorageError> {
        let fail =
            |e: &dyn std::fmt::Display| StorageError::Other(anyhow::anyhow!("signing a URL: {e}"));
        // `x-id` names the operation, as the SDK's URLs do; it is signed with the rest.
        let unsigned = format!(
            "{}{}{}?x-id={}",
            self.origin,
            self.path_prefix,
            encode_key(request.key),
            utf8_percent_encode(request.operation, UNRESERVED)
        );
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(request.expires_in);
        // S3's rules: the path is encoded once and never normalised.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity: Identity = credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| fail(&e))?
            .into();
        let headers = request
            .headers
            .iter()
            .map(|(name, value)| (*name, value.trim()));
        let signable = SignableRequest::new(
            request.method,
            unsigned.as_str(),
            headers,
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| fail(&e))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| fail(&e))?.into_parts();
        let mut url = unsigned;
        for (name, value) in instructions.params() {
            url.push('&');
            url.push_str(name);
            url.push('=');
            url.extend(utf8_percent_encode(value, UNRESERVED));
        }
        Ok(url)
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
            let put = signer
                .presign(
                    &credentials,
                    &Presign {
                        method: "PUT",
                        operation: "PutObject",
                        key: KEY,
                        headers: &headers,
                        expires_in: Duration::from_secs(300),
                    },
                    now,
                )
                .unwrap();
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
            let get = signer
                .presign(
                    &credentials,
                    &Presign {
                        method: "GET",
                        operation: "GetObject",
                        key: KEY,
                        headers: &[],
                        expires_in: Duration::from_secs(300),
                    },
                    now,
                )
                .unwrap();
            assert_eq!(query(&get), query(expected.uri()), "{endpoint:?}");
        }
    }
}
