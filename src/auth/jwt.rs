//! JWT bearer tokens: HS256 with a shared secret, RS256 / ES256 with a PEM public key, or any
//! asymmetric key of a JWKS file that is reloaded when it changes.
//!
//! Each key accepts only its own algorithm, so `alg: none` and algorithm confusion (an HS256
//! token "signed" with a public key) are refused; a `kid` the JWKS does not hold is refused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, bail};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::AuthError;
use crate::config::JwtSettings;
use crate::domain::Owner;

/// Longest `sub` accepted as an owner, in bytes.
const MAX_SUBJECT_BYTES: usize = 255;

/// Asymmetric algorithms a JWKS key may declare.
const JWKS_ALGORITHMS: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// A verification key and the one algorithm it accepts.
#[derive(Clone)]
struct Key {
    key: DecodingKey,
    algorithm: Algorithm,
}

/// The keys of a JWKS file, by `kid`.
#[derive(Default)]
struct KeySet {
    by_id: HashMap<String, Key>,
    /// The only key, when the set has exactly one (tokens without `kid` may use it).
    only: Option<Key>,
    /// How many keys of the file could be used.
    usable: usize,
}

enum Keys {
    Static(Key),
    Jwks {
        path: PathBuf,
        current: Arc<RwLock<Arc<(String, KeySet)>>>,
    },
}

/// Verifies bearer tokens.
pub struct JwtVerifier {
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_secs: u64,
    reload_every: Duration,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

impl JwtVerifier {
    pub fn from_settings(settings: &JwtSettings) -> anyhow::Result<Self> {
        let keys = if let Some(secret) = &settings.hs256_secret {
            Keys::Static(Key {
                key: DecodingKey::from_secret(secret.expose_secret().as_bytes()),
                algorithm: Algorithm::HS256,
            })
        } else if let Some(pem) = &settings.public_key_pem {
            Keys::Static(key_from_pem(pem).context("configuration key `auth.jwt.public_key_pem`")?)
        } else if let Some(path) = &settings.jwks_path {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "configuration key `auth.jwt.jwks_path`: reading {}",
                    path.display()
                )
            })?;
            let set = parse_jwks(&text).context("configuration key `auth.jwt.jwks_path`")?;
            Keys::Jwks {
                path: path.clone(),
                current: Arc::new(RwLock::new(Arc::new((text, set)))),
            }
        } else {
            bail!("configuration key `auth.jwt`: no key configured");
        };
        Ok(Self {
            keys,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway_secs: settings.leeway_secs,
            reload_every: Duration::from_secs(settings.jwks_reload_secs.max(1)),
        })
    }

    /// The owner named by a valid token's `sub`. A refusal is logged at debug level with its
    /// reason and the token's `kid` and `iss`, never the token; the caller learns only that
    /// the token was refused.
    pub fn verify(&self, token: &str) -> Result<Owner, AuthError> {
        self.check(token).map_err(|reason| {
            let (kid, iss) = unverified_kid_and_issuer(token);
            tracing::debug!(reason, kid = ?kid, iss = ?iss, "bearer token refused");
            AuthError::Invalid
        })
    }

    /// [`JwtVerifier::verify`] with the reason of a refusal.
    fn check(&self, token: &str) -> Result<Owner, &'static str> {
        let header = decode_header(token).map_err(|_| "malformed token")?;
        let key = self.key_for(&header)?;
        if header.alg != key.algorithm {
            return Err("algorithm does not match the key");
        }
        let claims = decode::<Claims>(token, &key.key, &self.validation(key.algorithm))
            .map_err(|e| refusal(e.kind()))?
            .claims;
        if claims.sub.is_empty()
            || claims.sub.len() > MAX_SUBJECT_BYTES
            || claims.sub.chars().any(char::is_control)
        {
            return Err("unusable sub claim");
        }
        Ok(Owner::new(claims.sub))
    }

    fn key_for(&self, header: &jsonwebtoken::Header) -> Result<Key, &'static str> {
        match &self.keys {
            Keys::Static(key) => Ok(key.clone()),
            Keys::Jwks { current, .. } => {
                let current = current.read().map_err(|_| "key set unavailable")?.clone();
                let set = &current.1;
                match header.kid.as_deref() {
                    Some(kid) => set.by_id.get(kid).cloned().ok_or("unknown kid"),
                    None => set.only.clone().ok_or("no kid and several keys"),
                }
            }
        }
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        // A configured issuer or audience must be present, not merely right when present.
        let mut required = vec!["exp", "sub"];
        required.extend(self.issuer.as_ref().map(|_| "iss"));
        required.extend(self.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        validation
    }

    /// Re-reads the JWKS file every `auth.jwt.jwks_reload_secs` and swaps the keys in when the
    /// file changed and parses; a broken file keeps the previous keys. No-op for static keys.
    pub fn spawn_reloader(&self) {
        let Keys::Jwks { path, current } = &self.keys else {
            return;
        };
        let (path, current, every) = (path.clone(), Arc::downgrade(current), self.reload_every);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.tick().await;
            loop {
                interval.tick().await;
                // The verifier is gone (its application stopped): stop too.
                let Some(current) = current.upgrade() else {
                    return;
                };
                reload(&path, &current).await;
            }
        });
    }
}

async fn reload(path: &Path, current: &RwLock<Arc<(String, KeySet)>>) {
    let text = match tokio::fs::read_to_string(path).await {
        Ok(text) => text,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read the JWKS file; keeping the current keys");
            return;
        }
    };
    let unchanged = current.read().map(|c| c.0 == text).unwrap_or(false);
    if unchanged {
        return;
    }
    match parse_jwks(&text) {
        Ok(set) => {
            let count = set.usable;
            if let Ok(mut current) = current.write() {
                *current = Arc::new((text, set));
            }
            tracing::info!(path = %path.display(), keys = count, "reloaded the JWKS file");
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), error = format!("{error:#}"), "the JWKS file is invalid; keeping the current keys");
        }
    }
}

fn key_from_pem(pem: &str) -> anyhow::Result<Key> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
        return Ok(Key {
            key,
            algorithm: Algorithm::RS256,
        });
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem.as_bytes()) {
        return Ok(Key {
            key,
            algorithm: Algorithm::ES256,
        });
    }
    bail!("not a PEM RSA or P-256 EC public key")
}

fn parse_jwks(text: &str) -> anyhow::Result<KeySet> {
    let set: JwkSet = serde_json::from_str(text).context("not a JWKS document")?;
    let mut keys = KeySet::default();
    let mut all = Vec::new();
    for jwk in &set.keys {
        let algorithm = match (jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(declared), _) => Algorithm::try_from(declared).ok(),
            (None, AlgorithmParameters::RSA(_)) => Some(Algorithm::RS256),
            (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => {
                Some(Algorithm::ES256)
            }
            (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P384 => {
                Some(Algorithm::ES384)
            }
            (None, AlgorithmParameters::OctetKeyPair(_)) => Some(Algorithm::EdDSA),
            _ => None,
        };
        // Symmetric keys in a key *set* would let anyone who can read it mint tokens.
        let Some(algorithm) = algorithm.filter(|a| JWKS_ALGORITHMS.contains(a)) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        let key = Key { key, algorithm };
        if let Some(kid) = &jwk.common.key_id {
            keys.by_id.insert(kid.clone(), key.clone());
        }
        all.push(key);
    }
    if all.is_empty() {
        bail!("the JWKS holds no usable asymmetric key");
    }
    keys.usable = all.len();
    if all.len() == 1 {
        keys.only = all.pop();
    }
    Ok(keys)
}

#[cfg(test)]
mod tests;

/// Why jsonwebtoken refused a token, in words for the debug log.
fn refusal(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not valid yet (nbf)",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAudience => "wrong aud",
        ErrorKind::InvalidIssuer => "wrong iss",
        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
        ErrorKind::InvalidAlgorithm => "algorithm not allowed",
        _ => "malformed token",
    }
}

/// The `kid` of the header and the `iss` of the payload, read without verifying anything:
/// for the log only, so that an operator can tell which issuer or key a refused token names.
fn unverified_kid_and_issuer(token: &str) -> (Option<String>, Option<String>) {
    use base64::Engine;
    let kid = decode_header(token).ok().and_then(|h| h.kid);
    let iss = token
        .split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|claims| claims.get("iss")?.as_str().map(str::to_owned));
    // Bounded: both come from whoever sent the token.
    let bound = |text: String| text.chars().take(128).collect::<String>();
    (kid.map(bound), iss.map(bound))
}
