//! S3 POST policies: browser-style form uploads whose size range, key and type storage
//! enforces. Signed with SigV4 by hand because the SDK has no POST presigner.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::anyhow;
use aws_credential_types::Credentials;
use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::storage::StorageError;

/// What one form upload may do.
pub struct PostPolicy<'a> {
    pub bucket: &'a str,
    pub region: &'a str,
    pub key: &'a str,
    pub content_type: Option<&'a str>,
    pub max_size: u64,
    pub expires_in: Duration,
}

impl PostPolicy<'_> {
    /// The form fields a client sends before the file, signature included.
    pub fn sign(
        &self,
        credentials: &Credentials,
        now: SystemTime,
    ) -> Result<BTreeMap<String, String>, StorageError> {
        let fail =
            |e: aws_smithy_types::date_time::DateTimeFormatError| StorageError::Other(anyhow!(e));
        // Whole seconds: a fractional x-amz-date is invalid.
        let now = DateTime::from_secs(DateTime::from(now).secs());
        let amz_date: String = now
            .fmt(Format::DateTime)
            .map_err(fail)?
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        let expiration = DateTime::from_secs(now.secs() + self.expires_in.as_secs() as i64)
            .fmt(Format::DateTime)
            .map_err(fail)?;
        let credential = format!(
            "{}/{}/{}/s3/aws4_request",
            credentials.access_key_id(),
            &amz_date[..8],
            self.region
        );

        let mut fields = BTreeMap::new();
        fields.insert("key".to_owned(), self.key.to_owned());
        if let Some(content_type) = self.content_type {
            fields.insert("Content-Type".to_owned(), content_type.to_owned());
        }
        fields.insert("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned());
        fields.insert("x-amz-credential".to_owned(), credential);
        fields.insert("x-amz-date".to_owned(), amz_date);
        if let Some(token) = credentials.session_token() {
            fields.insert("x-amz-security-token".to_owned(), token.to_owned());
        }

        let mut conditions: Vec<Value> = vec![
            json!({ "bucket": self.bucket }),
            json!(["content-length-range", 0, self.max_size]),
        ];
        conditions.extend(fields.iter().map(|(name, value)| json!({ name: value })));
        let policy = json!({ "expiration": expiration, "conditions": conditions });
        let policy = STANDARD.encode(policy.to_string());

        let signing_key = generate_signing_key(
            credentials.secret_access_key(),
            SystemTime::try_from(now).map_err(|e| StorageError::Other(anyhow!(e)))?,
            self.region,
            "s3",
        );
        fields.insert(
            "x-amz-signature".to_owned(),
            calculate_signature(signing_key, policy.as_bytes()),
        );
        fields.insert("policy".to_owned(), policy);
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded_policy(fields: &BTreeMap<String, String>) -> Value {
        serde_json::from_slice(&STANDARD.decode(&fields["policy"]).unwrap()).unwrap()
    }

    #[test]
    fn the_policy_binds_key_type_size_and_expiry() {
        let credentials = Credentials::new("AKID", "secret", None, None, "test");
        let policy = PostPolicy {
            bucket: "assets",
            region: "us-east-1",
            key: "uploads/anonymous/id/a \"quoted\" name.png",
            content_type: Some("image/png"),
            max_size: 1000,
            expires_in: Duration::from_secs(60),
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let fields = policy.sign(&credentials, now).unwrap();

        assert_eq!(fields["x-amz-date"], "20231114T221320Z");
        assert_eq!(
            fields["x-amz-credential"],
            "AKID/20231114/us-east-1/s3/aws4_request"
        );
        let decoded = decoded_policy(&fields);
        assert_eq!(decoded["expiration"], "2023-11-14T22:14:20Z");
        let conditions = decoded["conditions"].as_array().unwrap();
        assert!(conditions.contains(&json!(["content-length-range", 0, 1000])));
        assert!(
            conditions.contains(&json!({ "key": "uploads/anonymous/id/a \"quoted\" name.png" }))
        );
        assert!(conditions.contains(&json!({ "Content-Type": "image/png" })));
        assert!(conditions.contains(&json!({ "bucket": "assets" })));
        assert_eq!(fields["x-amz-signature"].len(), 64, "hex of an HMAC-SHA256");
    }

    #[test]
    fn session_tokens_are_sent_and_bound() {
        let credentials = Credentials::new("AKID", "secret", Some("token".into()), None, "test");
        let policy = PostPolicy {
            bucket: "assets",
            region: "eu-west-1",
            key: "k",
            content_type: None,
            max_size: 1,
            expires_in: Duration::from_secs(60),
        };
        let fields = policy.sign(&credentials, SystemTime::now()).unwrap();
        assert_eq!(fields["x-amz-security-token"], "token");
        assert!(!fields.contains_key("Content-Type"));
        let decoded = decoded_policy(&fields);
        assert!(
            decoded["conditions"]
                .as_array()
                .unwrap()
                .contains(&json!({ "x-amz-security-token": "token" }))
        );
    }
}
