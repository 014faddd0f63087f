//! Signed requests of the local backend: an HMAC-SHA256 over the method, bucket, key, expiry,
//! every declared limit and (for a part of a multipart upload) the part, carried in the query
//! string of a `PUT` or `GET` URL like S3's query signatures, or in the fields of a `POST`
//! form like S3's POST policy.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::form_urlencoded;

/// Version tag mixed into every signature, so the scheme can change without ambiguity.
const SCHEME: &str = "cau-v1";

/// The request a signature allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedMethod {
    Put,
    Get,
    /// A `multipart/form-data` upload whose fields carry the signature.
    Post,
}

impl SignedMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Put => "PUT",
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// The part of a multipart upload a signed `PUT` stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPart {
    /// 1-based part number (`partNumber`).
    pub number: u32,
    /// The upload the part belongs to (`uploadId`).
    pub upload_id: String,
}

/// Everything a signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub method: SignedMethod,
    pub bucket: String,
    pub key: String,
    /// Unix time (seconds) after which the URL is refused.
    pub expires: i64,
    /// Largest body accepted (uploads).
    pub max_size: Option<u64>,
    /// Exact body size required (uploads with a declared length).
    pub length: Option<u64>,
    /// Content type the upload must declare, or the download is served with.
    pub content_type: Option<String>,
    /// Base64 SHA-256 the uploaded bytes must have.
    pub checksum_sha256: Option<String>,
    /// The part stored, for a part of a multipart upload.
    pub part: Option<SignedPart>,
}

/// Why a signed URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the URL is not signed or a signed parameter is malformed")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the URL has expired")]
    Expired,
}

/// Signs and verifies URLs with one secret key.
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
}

impl UrlSigner {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// The query string (without `?`) that authorises `request`.
    pub fn sign(&self, request: &SignedRequest) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(self.signed_params(request));
        query.finish()
    }

    /// The parameters that authorise `request`, signature last: a URL's query, or a form's
    /// fields. [`verify`](Self::verify) takes them back.
    pub fn signed_params(&self, request: &SignedRequest) -> Vec<(&'static str, String)> {
        let mut params = vec![("expires", request.expires.to_string())];
        if let Some(max_size) = request.max_size {
            params.push(("max_size", max_size.to_string()));
        }
        if let Some(length) = request.length {
            params.push(("length", length.to_string()));
        }
        if let Some(content_type) = &request.content_type {
            params.push(("content_type", content_type.clone()));
        }
        if let Some(checksum) = &request.checksum_sha256 {
            params.push(("checksum_sha256", checksum.clone()));
        }
        if let Some(part) = &request.part {
            params.push(("partNumber", part.number.to_string()));
            params.push(("uploadId", part.upload_id.clone()));
        }
        let signature = hex::encode(self.mac(request).finalize().into_bytes());
        params.push(("signature", signature));
        params
    }

    /// Checks the parameters (query or form fields) of a request for `method bucket/key` at
    /// unix time `now`.
    pub fn verify(
        &self,
        method: SignedMethod,
        bucket: &str,
        key: &str,
        query: &HashMap<String, String>,
        now: i64,
    ) -> Result<SignedRequest, SignatureError> {
        let number = |name: &str| -> Result<Option<u64>, SignatureError> {
            query
                .get(name)
                .map(|v| v.parse::<u64>().map_err(|_| SignatureError::Malformed))
                .transpose()
        };
        // No signed value holds a control character; refusing them keeps the canonical
        // string's lines apart whatever a client sends.
        if query.values().any(|v| v.chars().any(char::is_control)) {
            return Err(SignatureError::Malformed);
        }
        let expires = query
            .get("expires")
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or(SignatureError::Malformed)?;
        let signature = query
            .get("signature")
            .and_then(|v| hex::decode(v).ok())
            .ok_or(SignatureError::Malformed)?;
        let request = SignedRequest {
            method,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            expires,
            max_size: number("max_size")?,
            length: number("length")?,
            content_type: query.get("content_type").cloned(),
            checksum_sha256: query.get("checksum_sha256").cloned(),
            part: part_of(query)?,
        };
        self.mac(&request)
            .verify_slice(&signature)
            .map_err(|_| SignatureError::Mismatch)?;
        // Checked after the signature, so an attacker learns nothing from the order of errors.
        if now > request.expires {
            return Err(SignatureError::Expired);
        }
        Ok(request)
    }

    fn mac(&self, request: &SignedRequest) -> Hmac<Sha256> {
        let optional = |value: Option<String>| value.unwrap_or_default();
        // Fields cannot contain '\n' (keys and types reject control characters), and each
        // optional field is tagged, so distinct requests never share a canonical string.
        let canonical = [
            SCHEME.to_owned(),
            request.method.as_str().to_owned(),
            request.bucket.clone(),
            request.key.clone(),
            request.expires.to_string(),
            format!(
                "max_size:{}",
                optional(request.max_size.map(|v| v.to_string()))
            ),
            format!("length:{}", optional(request.length.map(|v| v.to_string()))),
            format!("content_type:{}", optional(request.content_type.clone())),
            format!(
                "checksum_sha256:{}",
                optional(request.checksum_sha256.clone())
            ),
            format!(
                "part:{}",
                optional(
                    request
                        .part
                        .as_ref()
                        .map(|p| format!("{}:{}", p.number, p.upload_id))
                )
            ),
        ]
        .join("\n");
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(canonical.as_bytes());
        mac
    }
}

/// The part a query names: `partNumber` and `uploadId` together, or neither.
fn part_of(query: &HashMap<String, String>) -> Result<Option<SignedPart>, SignatureError> {
    match (query.get("partNumber"), query.get("uploadId")) {
        (None, None) => Ok(None),
        (Some(number), Some(upload_id)) => Ok(Some(SignedPart {
            number: number.parse().map_err(|_| SignatureError::Malformed)?,
            upload_id: upload_id.clone(),
        })),
        _ => Err(SignatureError::Malformed),
    }
}

#[cfg(test)]
mod tests;
