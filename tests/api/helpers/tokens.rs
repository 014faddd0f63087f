//! Credentials for the authenticated modes: HS256 tokens minted for any owner (or any
//! claims), API keys configured by their SHA-256 digest, and delegated upload tokens minted
//! through the API.

use cloud_asset_uploader::config::{ApiKeyEntry, AuthMode, Settings};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Backend, TestApp, json_with_status, spawn_app_with};

/// The HS256 secret of [`use_jwt`] (the minimum is 32 characters).
pub const JWT_SECRET: &str = "integration-test-jwt-secret-0123456789abcdef";
/// The `iss` the server requires under [`use_jwt`].
pub const ISSUER: &str = "https://issuer.example.test";
/// The `aud` the server requires under [`use_jwt`].
pub const AUDIENCE: &str = "cloud-asset-uploader";

/// `auth.mode = "jwt"` with [`JWT_SECRET`], [`ISSUER`] and [`AUDIENCE`], and no leeway, so
/// that a token that expired a minute ago is simply expired.
pub fn use_jwt(settings: &mut Settings) {
    settings.auth.mode = AuthMode::Jwt;
    settings.auth.jwt.hs256_secret = Some(SecretString::from(JWT_SECRET));
    settings.auth.jwt.issuer = Some(ISSUER.into());
    settings.auth.jwt.audience = Some(AUDIENCE.into());
    settings.auth.jwt.leeway_secs = 0;
}

/// Claims the server under [`use_jwt`] accepts, acting for `owner`.
pub fn claims_for(owner: &str) -> Value {
    json!({
        "sub": owner,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": get_current_timestamp() + 300,
    })
}

/// A valid token for `owner`.
pub fn token_for(owner: &str) -> String {
    sign(&claims_for(owner), JWT_SECRET)
}

/// `claims` signed HS256 with `secret`.
pub fn sign(claims: &Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes());
    encode(&Header::new(Algorithm::HS256), claims, &key).expect("minting a token")
}

/// `auth.mode = "api_key"` with one key per `(owner, key)`, configured as its digest.
pub fn use_api_keys(settings: &mut Settings, keys: &[(&str, &str)]) {
    settings.auth.mode = AuthMode::ApiKey;
    settings.auth.api_keys = keys
        .iter()
        .map(|(owner, key)| ApiKeyEntry {
            owner: (*owner).to_owned(),
            sha256: sha256_hex(key),
        })
        .collect();
}

/// Hex SHA-256, as `auth.api_keys` holds keys.
pub fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The key of [`use_upload_tokens`]: servers sharing it accept each other's upload tokens.
pub const UPLOAD_TOKEN_KEY: &str = "upload-token-test-key-0123456789abcdef";

/// `upload_tokens.signing_key` = [`UPLOAD_TOKEN_KEY`], so that upload tokens can be minted
/// whatever the profile.
pub fn use_upload_tokens(settings: &mut Settings) {
    settings.upload_tokens.signing_key = Some(SecretString::from(UPLOAD_TOKEN_KEY));
}

/// A server in JWT mode ([`use_jwt`]) that mints upload tokens ([`use_upload_tokens`]).
pub async fn spawn_upload_token_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |settings| {
        use_jwt(settings);
        use_upload_tokens(settings);
    })
    .await
}

/// Mints a delegated upload token as `owner` with `scope` (`POST /api/upload-tokens`); returns
/// the token.
pub async fn mint_upload_token(app: &TestApp, owner: &str, scope: Value) -> String {
    let response = app
        .as_owner(owner)
        .post_json("/api/upload-tokens", &scope)
        .await;
    let body: Value = json_with_status(response, 201).await;
    body["token"].as_str().unwrap().to_owned()
}
