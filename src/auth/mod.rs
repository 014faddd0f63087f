//! Authentication: who is calling. The result is an [`Owner`]; every read and write of the
//! API is scoped to it.
//!
//! Modes (`auth.mode`): `none` (everyone is `anonymous`), `jwt` ([`jwt`]) and `api_key`
//! ([`api_key`]).

pub mod api_key;
pub mod jwt;
pub mod upload_token;

use salvo::http::HeaderMap;

use crate::config::{AuthMode, AuthSettings};
use crate::domain::Owner;

/// Why a request could not be authenticated. Deliberately coarse: a client learns that its
/// credentials were refused, not which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("credentials are required")]
    Missing,
    #[error("the credentials were refused")]
    Invalid,
}

/// Verifies the credentials of requests, in the configured mode.
pub enum Authenticator {
    Anonymous,
    Jwt(jwt::JwtVerifier),
    ApiKey(api_key::ApiKeys),
}

impl Authenticator {
    /// Builds the verifier for `settings`, loading key material (PEM, JWKS file) now so that
    /// a bad key stops the start rather than every request.
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        Ok(match settings.mode {
            AuthMode::None => Self::Anonymous,
            AuthMode::Jwt => Self::Jwt(jwt::JwtVerifier::from_settings(&settings.jwt)?),
            AuthMode::ApiKey => Self::ApiKey(api_key::ApiKeys::new(&settings.api_keys)),
        })
    }

    /// The owner the request acts for.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Owner, AuthError> {
        match self {
            Self::Anonymous => Ok(Owner::anonymous()),
            Self::Jwt(verifier) => {
                let token = headers
                    .get(salvo::http::header::AUTHORIZATION)
                    .ok_or(AuthError::Missing)?
                    .to_str()
                    .map_err(|_| AuthError::Invalid)?;
                let token = strip_bearer(token).ok_or(AuthError::Invalid)?;
                verifier.verify(token)
            }
            Self::ApiKey(keys) => {
                let key = headers
                    .get(api_key::HEADER)
                    .ok_or(AuthError::Missing)?
                    .to_str()
                    .map_err(|_| AuthError::Invalid)?;
                keys.owner_of(key.trim()).ok_or_else(|| {
                    tracing::debug!(reason = "unknown key", "API key refused");
                    AuthError::Invalid
                })
            }
        }
    }

    /// The `WWW-Authenticate` challenge of a 401 in this mode.
    pub fn challenge(&self, error: &AuthError) -> Option<String> {
        let realm = "realm=\"cloud-asset-uploader\"";
        match (self, error) {
            (Self::Anonymous, _) => None,
            (Self::Jwt(_), AuthError::Missing) => Some(format!("Bearer {realm}")),
            (Self::Jwt(_), AuthError::Invalid) => {
                Some(format!("Bearer {realm}, error=\"invalid_token\""))
            }
            (Self::ApiKey(_), _) => Some(format!("ApiKey {realm}, header=\"{}\"", api_key::HEADER)),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn strip_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_taken_from_the_authorization_header() {
        assert_eq!(strip_bearer("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(strip_bearer("bearer   abc"), Some("abc"));
        assert_eq!(strip_bearer("Basic dXNlcjpwYXNz"), None);
        assert_eq!(strip_bearer("Bearer "), None);
        assert_eq!(strip_bearer("abc"), None);
    }

    #[test]
    fn anonymous_mode_acts_for_anonymous() {
        let owner = Authenticator::Anonymous
            .authenticate(&HeaderMap::new())
            .unwrap();
        assert_eq!(owner, Owner::anonymous());
    }
}
