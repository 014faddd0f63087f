//! Authentication: refused or missing credentials get 401 problem+json with a
//! `WWW-Authenticate` challenge, the probes and docs stay open, and production refuses to run
//! without authentication.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cloud_asset_uploader::config::{ConfigError, RawEnv, Settings};
use reqwest::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::tokens::{
    JWT_SECRET, claims_for, sha256_hex, sign, token_for, use_api_keys, use_jwt,
};
use crate::helpers::{Backend, Caller, assert_problem, header, json_with_status, spawn_app_with};

/// Alice's valid claims with `field` replaced, or removed when `value` is null.
fn alice_with(field: &str, value: Value) -> Value {
    let mut claims = claims_for("alice");
    let map = claims.as_object_mut().unwrap();
    match value {
        Value::Null => map.remove(field),
        value => map.insert(field.to_owned(), value),
    };
    claims
}

/// API keys mode with one key, `k-alice`, acting for alice.
fn alice_api_key(settings: &mut Settings) {
    use_api_keys(settings, &[("alice", "k-alice")]);
}

/// A token with `{"alg":"none"}` and no signature.
fn alg_none_token() -> String {
    let part = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let header = part(json!({ "alg": "none", "typ": "JWT" }));
    format!("{header}.{}.", part(claims_for("alice")))
}

/// Asserts a 401 `unauthorized` problem whose challenge starts with `scheme`; returns the
/// challenge.
async fn assert_unauthorized(response: Response, scheme: &str, reason: &str) -> String {
    let challenge = header(&response, "www-authenticate");
    assert_eq!(response.status().as_u16(), 401, "{reason}");
    assert_problem(response, 401, "unauthorized").await;
    assert!(
        challenge.starts_with(scheme),
        "{reason}: challenge {challenge:?}"
    );
    challenge
}

/// The three API routes, called by `caller`.
async fn every_route(caller: &Caller<'_>) -> Vec<(Response, &'static str)> {
    let id = Uuid::new_v4();
    vec![
        (
            caller
                .request_upload(&json!({ "object_key": "a.txt" }))
                .await,
            "POST /api/upload",
        ),
        (caller.mark_status(id, "complete").await, "PUT /api/status"),
        (caller.access(id).await, "GET /api/access"),
    ]
}

#[tokio::test]
async fn a_valid_bearer_token_acts_for_its_sub() {
    // Arrange
    let app = spawn_app_with(Backend::Local, use_jwt).await;

    // Act
    let response = app
        .as_owner("alice")
        .request_upload(&json!({ "object_key": "a" }))
        .await;

    // Assert
    assert_eq!(response.status().as_u16(), 201);
}

#[tokio::test]
async fn refused_bearer_tokens_return_401_with_an_invalid_token_challenge() {
    // Arrange
    let app = spawn_app_with(Backend::Local, use_jwt).await;
    let expired = jsonwebtoken::get_current_timestamp() - 60;
    let broken_claims = [
        ("exp", json!(expired), "expired a minute ago"),
        (
            "iss",
            json!("https://evil.example"),
            "issued by someone else",
        ),
        (
            "aud",
            json!("another-service"),
            "meant for another audience",
        ),
        ("iss", Value::Null, "no iss while auth.jwt.issuer is set"),
        ("aud", Value::Null, "no aud while auth.jwt.audience is set"),
    ];
    let mut cases: Vec<(String, &str)> = broken_claims
        .into_iter()
        .map(|(field, value, reason)| (sign(&alice_with(field, value), JWT_SECRET), reason))
        .collect();
    let forged = sign(&claims_for("alice"), "forged-secret-0123456789abcdef-0123");
    cases.extend([
        (forged, "signed with another secret"),
        (alg_none_token(), "alg none, no signature"),
        ("not.a.jwt".to_owned(), "not a JWT"),
    ]);

    for (token, reason) in cases {
        // Act
        let responses = every_route(&app.with_bearer(&token)).await;

        // Assert
        for (response, route) in responses {
            let challenge =
                assert_unauthorized(response, "Bearer ", &format!("{reason}, {route}")).await;
            assert!(
                challenge.contains("error=\"invalid_token\""),
                "{reason}: {challenge}"
            );
        }
    }
}

#[tokio::test]
async fn an_authorization_header_that_is_not_a_bearer_token_returns_401() {
    // Arrange
    let app = spawn_app_with(Backend::Local, use_jwt).await;
    let token = token_for("alice");
    let cases = [
        (
            format!("Basic {}", URL_SAFE_NO_PAD.encode("alice:secret")),
            "basic credentials",
        ),
        (token.clone(), "a token without the Bearer scheme"),
        ("Bearer ".to_owned(), "the scheme without a token"),
    ];

    for (value, reason) in cases {
        // Act
        let caller = app.with_headers(&[("authorization", &value)]);
        let response = caller.request_upload(&json!({ "object_key": "a" })).await;

        // Assert
        assert_unauthorized(response, "Bearer ", reason).await;
    }
}

#[tokio::test]
async fn requests_without_credentials_return_401_with_the_scheme_to_use() {
    // Arrange
    let jwt = spawn_app_with(Backend::Local, use_jwt).await;
    let api_key = spawn_app_with(Backend::Local, alice_api_key).await;

    // Act
    let without_token = every_route(&jwt.with_headers(&[])).await;
    let without_key = every_route(&api_key.with_headers(&[])).await;

    // Assert
    for (response, route) in without_token {
        let challenge = assert_unauthorized(response, "Bearer realm=", route).await;
        assert!(
            !challenge.contains("error="),
            "{route}: no token, so none was refused"
        );
    }
    for (response, route) in without_key {
        let challenge = assert_unauthorized(response, "ApiKey ", route).await;
        assert!(challenge.contains("x-api-key"), "{route}: {challenge}");
    }
}

#[tokio::test]
async fn a_configured_api_key_acts_for_its_owner_and_any_other_key_returns_401() {
    // Arrange
    let app = spawn_app_with(Backend::Local, alice_api_key).await;
    let digest = sha256_hex("k-alice");
    let refused = [
        ("k-mallory", "an unknown key"),
        ("K-ALICE", "keys are case-sensitive"),
        ("k-alic", "a prefix of the key"),
        (digest.as_str(), "the configured digest is not the key"),
        ("", "an empty key"),
    ];
    let body = json!({ "object_key": "a.txt" });

    // Act
    let accepted = app.with_api_key("k-alice").request_upload(&body).await;

    // Assert
    assert_eq!(accepted.status().as_u16(), 201);
    for (key, reason) in refused {
        let response = app.with_api_key(key).request_upload(&body).await;
        assert_unauthorized(response, "ApiKey ", reason).await;
    }
}

#[tokio::test]
async fn probes_and_docs_stay_open_without_credentials() {
    for configure in [use_jwt, alice_api_key] {
        // Arrange
        let app = spawn_app_with(Backend::Local, configure).await;

        for path in ["/healthz", "/readyz", "/openapi.json", "/docs"] {
            // Act
            let response = app.get(path).await;

            // Assert
            assert_eq!(response.status().as_u16(), 200, "{path}");
        }
    }
}

#[tokio::test]
async fn the_openapi_document_declares_the_bearer_and_api_key_security_schemes() {
    // Arrange
    let app = spawn_app_with(Backend::Local, use_jwt).await;

    // Act
    let document: Value = json_with_status(app.get("/openapi.json").await, 200).await;

    // Assert
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer_token"]["type"], "http", "{schemes}");
    assert_eq!(schemes["bearer_token"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["api_key"]["type"], "apiKey", "{schemes}");
    assert_eq!(schemes["api_key"]["in"], "header", "{schemes}");
    assert_eq!(schemes["api_key"]["name"], "x-api-key", "{schemes}");
    let upload = &document["paths"]["/api/upload"]["post"];
    let required: Vec<String> = upload["security"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|requirement| requirement.as_object().unwrap().keys().cloned())
        .collect();
    assert_eq!(required, ["bearer_token", "api_key"], "{upload}");
}

#[test]
fn the_production_profile_refuses_to_start_with_auth_mode_none() {
    // Arrange
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let database = (
        "UPLOADER_DATABASE__URL",
        "postgres://u:p@db.example/uploader",
    );
    let keys = json!([{ "owner": "alice", "sha256": sha256_hex("k-alice") }]).to_string();
    let load = |pairs: &[(&str, &str)]| {
        let env = RawEnv::from_pairs(pairs.iter().copied());
        Settings::load_from(&config_dir, None, "production", env)
    };

    // Act
    let anonymous = load(&[database]);
    let with_keys = load(&[
        database,
        ("UPLOADER_AUTH__MODE", "api_key"),
        ("UPLOADER_AUTH__API_KEYS", &keys),
    ]);

    // Assert
    match anonymous {
        Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "auth.mode"),
        other => panic!("expected auth.mode to be refused, got {other:?}"),
    }
    assert!(
        with_keys.is_ok(),
        "the same settings with api keys: {with_keys:?}"
    );
}
