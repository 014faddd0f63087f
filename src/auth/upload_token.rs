//! Delegated upload tokens: an application's backend, authenticated as an owner, mints a
//! short-lived token for a browser (`POST /api/upload-tokens`); the browser sends it as
//! `Authorization: Bearer <token>` and may then issue, send, complete and abort uploads
//! within the token's [`UploadScope`], and read back only the assets it created.
//!
//! A token is a JWT (HS256 over `upload_tokens.signing_key`) whose header says
//! `typ: cau-upload+jwt`, so it is told apart from an identity provider's tokens without
//! trying keys, and whose claims carry the owner (`sub`), an id (`jti`), the expiry and the
//! scope. It is verified without a database round trip; revocation is by expiry, so
//! lifetimes are kept short (`upload_tokens.max_expires_in`).

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header,
};
use rand::RngCore;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AuthError;
use crate::config::UploadTokenSettings;
use crate::domain::{Owner, UploadScope};

/// The JWT `typ` of an upload token.
pub const TOKEN_TYPE: &str = "cau-upload+jwt";
const ISSUER: &str = "cloud-asset-uploader";
const AUDIENCE: &str = "cloud-asset-uploader:upload";

/// Mints and verifies upload tokens with the configured key.
pub struct UploadTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// `upload_tokens.default_expires_in` and `upload_tokens.max_expires_in`, in seconds.
    pub default_expires_in: u64,
    pub max_expires_in: u64,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    jti: Uuid,
    iat: i64,
    exp: i64,
    scope: UploadScope,
}

/// A freshly minted token and what it allows.
#[derive(Debug)]
pub struct MintedToken {
    pub token: String,
    pub scope: UploadScope,
}

impl UploadTokens {
    /// The minter for `settings`: with the configured key; in development without one, with a
    /// random key of this process (tokens then die with it, and replicas do not share them);
    /// `None` (tokens disabled) elsewhere without a key.
    pub fn from_settings(settings: &UploadTokenSettings, development: bool) -> Option<Self> {
        let key: Vec<u8> = match &settings.signing_key {
            Some(key) => key.expose_secret().as_bytes().to_vec(),
            None if development => {
                tracing::warn!(
                    "upload_tokens.signing_key is not set: upload tokens are signed with a random key of this process; set the key outside development"
                );
                let mut key = vec![0u8; 32];
                rand::rng().fill_bytes(&mut key);
                key
            }
            None => return None,
        };
        Some(Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            default_expires_in: settings.default_expires_in,
            max_expires_in: settings.max_expires_in,
        })
    }

    /// A token for `owner` with `scope` (its id and expiry are set here), valid `lifetime`.
    pub fn mint(
        &self,
        owner: &Owner,
        mut scope: UploadScope,
        lifetime: Duration,
    ) -> anyhow::Result<MintedToken> {
        let now = Utc::now().timestamp();
        let exp = now + i64::try_from(lifetime.as_secs()).context("token lifetime")?;
        scope.token_id = Uuid::now_v7();
        scope.expires_at = DateTime::from_timestamp(exp, 0).context("token expiry")?;
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: owner.as_str().to_owned(),
            jti: scope.token_id,
            iat: now,
            exp,
            scope: scope.clone(),
        };
        let header = Header {
            typ: Some(TOKEN_TYPE.into()),
            ..Header::new(Algorithm::HS256)
        };
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .context("signing an upload token")?;
        Ok(MintedToken { token, scope })
    }

    /// The owner and scope of a valid, unexpired upload token. A refusal is logged at debug
    /// level with its reason, never the token.
    pub fn verify(&self, token: &str) -> Result<(Owner, UploadScope), AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        let claims = decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|error| {
                tracing::debug!(reason = ?error.kind(), "upload token refused");
                AuthError::Invalid
            })?
            .claims;
        let mut scope = claims.scope;
        scope.token_id = claims.jti;
        scope.expires_at = DateTime::from_timestamp(claims.exp, 0).ok_or(AuthError::Invalid)?;
        Ok((Owner::new(claims.sub), scope))
    }
}

/// Whether a bearer token is an upload token (by its header's `typ`), not an identity
/// provider's.
pub fn is_upload_token(token: &str) -> bool {
    decode_header(token).is_ok_and(|header| header.typ.as_deref() == Some(TOKEN_TYPE))
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn tokens() -> UploadTokens {
        let settings = UploadTokenSettings {
            signing_key: Some(SecretString::from("k".repeat(32))),
            ..UploadTokenSettings::default()
        };
        UploadTokens::from_settings(&settings, false).unwrap()
    }

    fn scope() -> UploadScope {
        UploadScope {
            token_id: Uuid::nil(),
            object_key_prefix: Some("user-1/".into()),
            max_uploads: Some(3),
            max_size: Some(1000),
            allowed_content_types: vec!["image/*".into()],
            expires_at: DateTime::default(),
        }
    }

    #[test]
    fn a_minted_token_verifies_to_its_owner_and_scope() {
        let tokens = tokens();
        let minted = tokens
            .mint(&Owner::new("alice"), scope(), Duration::from_secs(60))
            .unwrap();
        assert!(is_upload_token(&minted.token));
        let (owner, scope) = tokens.verify(&minted.token).unwrap();
        assert_eq!(owner.as_str(), "alice");
        assert_eq!(scope, minted.scope);
        assert_ne!(scope.token_id, Uuid::nil(), "each token gets its own id");
    }

    #[test]
    fn a_token_of_another_key_or_altered_is_refused() {
        let minted = tokens()
            .mint(&Owner::new("alice"), scope(), Duration::from_secs(60))
            .unwrap();
        let other = UploadTokens::from_settings(
            &UploadTokenSettings {
                signing_key: Some(SecretString::from("x".repeat(32))),
                ..UploadTokenSettings::default()
            },
            false,
        )
        .unwrap();
        assert_eq!(other.verify(&minted.token), Err(AuthError::Invalid));
        let mut altered = minted.token.clone();
        altered.insert(altered.len() - 2, 'A');
        assert_eq!(tokens().verify(&altered), Err(AuthError::Invalid));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let tokens = tokens();
        let minted = tokens
            .mint(&Owner::new("alice"), scope(), Duration::from_secs(0))
            .unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(tokens.verify(&minted.token), Err(AuthError::Invalid));
    }

    #[test]
    fn tokens_are_disabled_outside_development_without_a_key() {
        let settings = UploadTokenSettings::default();
        assert!(UploadTokens::from_settings(&settings, false).is_none());
        assert!(UploadTokens::from_settings(&settings, true).is_some());
    }
}
