//! Tokens minted with the test-only keys of `tests/fixtures/keys/` (see its README).

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::*;

macro_rules! key_file {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/keys/",
            $name
        ))
    };
}

const RSA_PUBLIC: &str = key_file!("rsa_public.pem");
const RSA_PRIVATE: &str = key_file!("rsa_private.pem");
const RSA2_PRIVATE: &str = key_file!("rsa2_private.pem");
const EC_PUBLIC: &str = key_file!("ec_public.pem");
const EC_PRIVATE: &str = key_file!("ec_private.pem");
const SECRET: &str = "unit-test-hs256-secret-0123456789abcdef";
const ISSUER: &str = "https://issuer.example.test";
const AUDIENCE: &str = "cloud-asset-uploader";

fn now() -> i64 {
    get_current_timestamp() as i64
}

/// Claims that pass every check of [`verifier_with`]'s issuer and audience.
fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "exp": now() + 300, "iss": ISSUER, "aud": AUDIENCE })
}

/// Alice's claims with `field` replaced, or removed when `value` is null.
fn claims_with(field: &str, value: Value) -> Value {
    let mut claims = claims("alice");
    let map = claims.as_object_mut().unwrap();
    match value {
        Value::Null => map.remove(field),
        value => map.insert(field.into(), value),
    };
    claims
}

fn hs256_with(secret: &[u8], claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret);
    encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

fn hs256(claims: &Value) -> String {
    hs256_with(SECRET.as_bytes(), claims)
}

/// A token signed with a private PEM key (EC for ES256, RSA otherwise).
fn signed(algorithm: Algorithm, kid: Option<&str>, private_pem: &str, sub: &str) -> String {
    let key = match algorithm {
        Algorithm::ES256 => EncodingKey::from_ec_pem(private_pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(private_pem.as_bytes()),
    };
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    encode(&header, &claims(sub), &key.unwrap()).unwrap()
}

/// A token assembled by hand: any header, any payload, no signature.
fn unsigned(header: Value, claims: &Value) -> String {
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.", part(&header), part(claims))
}

fn verifier_with(configure: impl FnOnce(&mut JwtSettings)) -> JwtVerifier {
    let mut settings = JwtSettings {
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        leeway_secs: 5,
        ..JwtSettings::default()
    };
    configure(&mut settings);
    JwtVerifier::from_settings(&settings).expect("building the verifier")
}

fn hs256_verifier() -> JwtVerifier {
    verifier_with(|s| s.hs256_secret = Some(SecretString::from(SECRET)))
}

fn pem_verifier(public_pem: &str) -> JwtVerifier {
    verifier_with(|s| s.public_key_pem = Some(public_pem.into()))
}

fn jwks_verifier(file: &JwksFile) -> JwtVerifier {
    verifier_with(|s| {
        s.jwks_path = Some(file.0.clone());
        s.jwks_reload_secs = 1;
    })
}

fn owner(verifier: &JwtVerifier, token: &str) -> Result<String, AuthError> {
    verifier
        .verify(token)
        .map(|owner| owner.as_str().to_owned())
}

/// The reasons of the `(token, reason)` cases that `verifier` accepted.
fn accepted<'a>(verifier: &JwtVerifier, cases: &[(String, &'a str)]) -> Vec<&'a str> {
    let accepted = cases
        .iter()
        .filter(|(token, _)| verifier.verify(token).is_ok());
    accepted.map(|(_, reason)| *reason).collect()
}

#[test]
fn a_valid_hs256_token_acts_for_the_owner_named_by_its_sub() {
    let token = hs256(&claims("alice"));
    assert_eq!(owner(&hs256_verifier(), &token), Ok("alice".into()));
}

#[test]
fn hs256_tokens_that_break_a_rule_are_refused() {
    let broken_claims = [
        (
            "exp",
            json!(now() - 60),
            "expired a minute ago, beyond the 5 s leeway",
        ),
        ("exp", Value::Null, "exp is required"),
        ("exp", json!("tomorrow"), "exp must be a number"),
        (
            "nbf",
            json!(now() + 60),
            "not valid before a minute from now",
        ),
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
        ("sub", Value::Null, "no sub: no owner"),
        ("sub", json!(""), "an empty sub names no owner"),
        ("sub", json!("a".repeat(256)), "sub longer than 255 bytes"),
        ("sub", json!("alice\nbob"), "control characters in sub"),
    ];
    let mut cases: Vec<(String, &str)> = broken_claims
        .into_iter()
        .map(|(field, value, reason)| (hs256(&claims_with(field, value)), reason))
        .collect();
    let genuine = hs256(&claims("alice"));
    let parts: Vec<&str> = genuine.split('.').collect();
    let mallory = URL_SAFE_NO_PAD.encode(claims("mallory").to_string());
    cases.extend([
        (
            format!("{}.{mallory}.{}", parts[0], parts[2]),
            "payload changed after signing",
        ),
        (
            hs256_with(b"another-secret-0123456789abcdef", &claims("alice")),
            "another secret",
        ),
        ("not-a-token".to_owned(), "not a JWT at all"),
    ]);
    assert_eq!(accepted(&hs256_verifier(), &cases), Vec::<&str>::new());
}

#[test]
fn issuer_and_audience_are_required_when_configured() {
    let cases = [
        (
            hs256(&claims_with("iss", Value::Null)),
            "no iss while auth.jwt.issuer is set",
        ),
        (
            hs256(&claims_with("aud", Value::Null)),
            "no aud while auth.jwt.audience is set",
        ),
    ];
    assert_eq!(accepted(&hs256_verifier(), &cases), Vec::<&str>::new());
}

#[test]
fn exp_and_nbf_tolerate_the_configured_leeway() {
    let verifier = verifier_with(|s| {
        s.hs256_secret = Some(SecretString::from(SECRET));
        s.leeway_secs = 30;
    });
    let expired = hs256(&claims_with("exp", json!(now() - 10)));
    let early = hs256(&claims_with("nbf", json!(now() + 10)));
    assert_eq!(
        owner(&verifier, &expired),
        Ok("alice".into()),
        "expired 10 s ago"
    );
    assert_eq!(
        owner(&verifier, &early),
        Ok("alice".into()),
        "valid in 10 s"
    );
}

#[test]
fn tokens_with_alg_none_are_refused_by_every_kind_of_verifier() {
    let jwks = JwksFile::new(key_file!("jwks.json"));
    let verifiers = [
        (hs256_verifier(), "an HS256 secret"),
        (pem_verifier(RSA_PUBLIC), "an RSA PEM key"),
        (jwks_verifier(&jwks), "a JWKS"),
    ];
    for (verifier, kind) in &verifiers {
        for alg in ["none", "None", "NONE"] {
            let token = unsigned(json!({ "alg": alg, "typ": "JWT" }), &claims("alice"));
            let refused = verifier.verify(&token);
            assert_eq!(
                refused,
                Err(AuthError::Invalid),
                "alg {alg:?} against {kind}"
            );
        }
    }
}

#[test]
fn hs256_tokens_signed_with_the_configured_public_key_are_refused() {
    for public_pem in [RSA_PUBLIC, EC_PUBLIC] {
        let confused = hs256_with(public_pem.as_bytes(), &claims("alice"));
        let refused = pem_verifier(public_pem).verify(&confused);
        assert_eq!(refused, Err(AuthError::Invalid), "{public_pem}");
    }
}

#[test]
fn rs256_and_es256_tokens_verify_against_their_pem_public_keys() {
    let (rsa, ec) = (pem_verifier(RSA_PUBLIC), pem_verifier(EC_PUBLIC));
    let rs256 = signed(Algorithm::RS256, None, RSA_PRIVATE, "alice");
    let es256 = signed(Algorithm::ES256, None, EC_PRIVATE, "bob");
    let other_rsa = signed(Algorithm::RS256, None, RSA2_PRIVATE, "alice");

    assert_eq!(owner(&rsa, &rs256), Ok("alice".into()));
    assert_eq!(owner(&ec, &es256), Ok("bob".into()));
    assert_eq!(
        rsa.verify(&es256),
        Err(AuthError::Invalid),
        "ES256 against an RSA key"
    );
    assert_eq!(
        ec.verify(&rs256),
        Err(AuthError::Invalid),
        "RS256 against an EC key"
    );
    assert_eq!(
        rsa.verify(&other_rsa),
        Err(AuthError::Invalid),
        "another RSA key"
    );
}

#[test]
fn a_jwks_with_two_keys_verifies_each_token_with_the_key_its_kid_names() {
    let jwks = JwksFile::new(key_file!("jwks.json"));
    let verifier = jwks_verifier(&jwks);
    let rs256 = signed(Algorithm::RS256, Some("rsa-1"), RSA_PRIVATE, "alice");
    let es256 = signed(Algorithm::ES256, Some("ec-1"), EC_PRIVATE, "bob");

    assert_eq!(owner(&verifier, &rs256), Ok("alice".into()));
    assert_eq!(owner(&verifier, &es256), Ok("bob".into()));
}

#[test]
fn jwks_tokens_whose_kid_does_not_name_their_key_are_refused() {
    let jwks = JwksFile::new(key_file!("jwks.json"));
    let rs256 = |kid, pem| signed(Algorithm::RS256, kid, pem, "alice");
    let cases = [
        (
            rs256(Some("rsa-2"), RSA2_PRIVATE),
            "a kid the JWKS does not hold",
        ),
        (
            rs256(Some("rsa-9"), RSA_PRIVATE),
            "an unknown kid on a known key",
        ),
        (
            rs256(None, RSA_PRIVATE),
            "no kid while the JWKS holds two keys",
        ),
        (
            rs256(Some("ec-1"), RSA_PRIVATE),
            "the kid of a key of another algorithm",
        ),
    ];
    assert_eq!(accepted(&jwks_verifier(&jwks), &cases), Vec::<&str>::new());
}

#[test]
fn a_jwks_holding_only_symmetric_keys_is_refused_at_start() {
    let jwks = JwksFile::new(&symmetric_jwks());
    let settings = JwtSettings {
        jwks_path: Some(jwks.0.clone()),
        ..JwtSettings::default()
    };
    let result = JwtVerifier::from_settings(&settings);
    assert!(
        result.is_err(),
        "anyone who can read the set could mint tokens"
    );
}

#[tokio::test]
async fn a_reloaded_jwks_file_brings_in_its_new_keys() {
    let jwks = JwksFile::new(&key_set(&[key_file!("rsa.jwk.json")]));
    let verifier = jwks_verifier(&jwks);
    let old = signed(Algorithm::RS256, Some("rsa-1"), RSA_PRIVATE, "alice");
    let new = signed(Algorithm::RS256, Some("rsa-2"), RSA2_PRIVATE, "bob");
    verifier.spawn_reloader();
    assert_eq!(
        verifier.verify(&new),
        Err(AuthError::Invalid),
        "not yet published"
    );

    jwks.replace(&key_set(&[
        key_file!("rsa.jwk.json"),
        key_file!("rsa2.jwk.json"),
    ]));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert_eq!(
        owner(&verifier, &new),
        Ok("bob".into()),
        "the published key"
    );
    assert_eq!(
        owner(&verifier, &old),
        Ok("alice".into()),
        "the key that stayed"
    );
}

#[tokio::test]
async fn a_broken_jwks_file_keeps_the_previous_keys() {
    let jwks = JwksFile::new(key_file!("jwks.json"));
    let verifier = jwks_verifier(&jwks);
    let token = signed(Algorithm::RS256, Some("rsa-1"), RSA_PRIVATE, "alice");
    verifier.spawn_reloader();
    let broken = [
        ("{\"keys\": [".to_owned(), "truncated JSON"),
        ("{\"keys\": []}".to_owned(), "an empty key set"),
        (symmetric_jwks(), "only a symmetric key"),
    ];
    for (text, reason) in broken {
        jwks.replace(&text);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(owner(&verifier, &token), Ok("alice".into()), "{reason}");
    }
}

fn key_set(jwks: &[&str]) -> String {
    let keys: Vec<Value> = jwks
        .iter()
        .map(|k| serde_json::from_str(k).unwrap())
        .collect();
    json!({ "keys": keys }).to_string()
}

fn symmetric_jwks() -> String {
    let k = URL_SAFE_NO_PAD.encode(SECRET);
    json!({ "keys": [{ "kty": "oct", "kid": "shared", "alg": "HS256", "k": k }] }).to_string()
}

/// A JWKS file in the temporary directory, removed when dropped.
struct JwksFile(PathBuf);

impl JwksFile {
    fn new(text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("jwks-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    /// Swaps the content in at once, so the reloader never reads half a file.
    fn replace(&self, text: &str) {
        let staged = self.0.with_extension("staged");
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, &self.0).unwrap();
    }
}

impl Drop for JwksFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What `verify` logs, at debug level, while it refuses `token`.
fn debug_log_of(verifier: &JwtVerifier, token: &str) -> String {
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(verifier.verify(token), Err(AuthError::Invalid));
    });
    String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn a_refused_token_is_logged_at_debug_with_its_reason_kid_and_issuer_but_never_itself() {
    let verifier = verifier_with(|jwt| {
        jwt.hs256_secret = Some(SecretString::from(SECRET.to_owned()));
        jwt.issuer = Some(ISSUER.into());
        jwt.audience = Some(AUDIENCE.into());
    });
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("key-2026".into());
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let cases = [
        (claims_with("exp", json!(now() - 3600)), "expired"),
        (claims_with("aud", json!("someone-else")), "wrong aud"),
        (
            claims_with("iss", json!("https://other.example")),
            "wrong iss",
        ),
    ];
    for (claims, reason) in cases {
        let token = encode(&header, &claims, &key).unwrap();
        let log = debug_log_of(&verifier, &token);
        assert!(log.contains(reason), "{reason}: {log}");
        assert!(log.contains("key-2026"), "names the kid: {log}");
        assert!(
            log.contains(claims["iss"].as_str().unwrap()),
            "names the iss: {log}"
        );
        assert!(!log.contains(&token), "never the token: {log}");
    }
    let forged = hs256_with(b"another-secret-0123456789abcdef0123", &claims("alice"));
    assert!(debug_log_of(&verifier, &forged).contains("bad signature"));
}
