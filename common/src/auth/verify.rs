//! Checking one token: its header names an accepted algorithm and a key we hold, its
//! signature verifies with that key (jsonwebtoken does the cryptography), and its claims
//! are in force — `exp`, `nbf`, `iss`, `aud` with 60 s leeway, and a `sub`.

use super::config::{AuthConfig, KeySource};
use super::error::AuthError;
use super::keys::ACCEPTED;
use super::store::KeyStore;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use std::sync::Arc;

/// The scope that reads and acts for every customer.
pub const ADMIN_SCOPE: &str = "orders:admin";
/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;
/// A longer `Authorization` value is refused before any parsing (a real JWT is ~1 KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`: for a customer, its customer id.
    pub subject: String,
    /// Its `scope` contains [`ADMIN_SCOPE`].
    pub admin: bool,
}

/// Verifies tokens against the configured issuer, audience and keys; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    keys: KeyStore,
    issuer: Arc<str>,
    audience: Arc<str>,
    /// One validation per accepted algorithm, built once.
    validations: Arc<[(Algorithm, Validation)]>,
}

/// The claims we read; `exp`, `nbf`, `iss` and `aud` are checked by jsonwebtoken.
#[derive(Deserialize)]
struct Claims {
    /// Required: jsonwebtoken reports it missing (after the signature check).
    #[serde(default)]
    sub: Option<String>,
    /// Space-separated (RFC 8693); a list of strings is read too.
    #[serde(default)]
    scope: serde_json::Value,
}

impl Authenticator {
    pub fn new(config: &AuthConfig) -> Self {
        let keys = match &config.keys {
            KeySource::Pem(set) => KeyStore::fixed(set.clone()),
            KeySource::Jwks {
                location,
                refresh,
                min_interval,
            } => KeyStore::jwks(location.clone(), &config.issuer, *refresh, *min_interval),
        };
        let validations = ACCEPTED
            .iter()
            .map(|&algorithm| {
                let mut validation = Validation::new(algorithm);
                validation.leeway = LEEWAY_SECS;
                validation.validate_exp = true;
                validation.validate_nbf = true;
                validation.set_issuer(&[&config.issuer]);
                validation.set_audience(&[&config.audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                (algorithm, validation)
            })
            .collect();
        Self {
            keys,
            issuer: config.issuer.as_str().into(),
            audience: config.audience.as_str().into(),
            validations,
        }
    }

    /// The key store, to run its refresh and to ask whether it is loaded.
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// Checks `token`; fetches nothing unless it names a key id we do not hold (see
    /// [`KeyStore::refresh_for_unknown_kid`]).
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::invalid(format!(
                "the token is longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|error| header_error(&error))?;
        let algorithm = header.alg;
        if !ACCEPTED.contains(&algorithm) {
            return Err(AuthError::invalid(format!(
                "the token is signed with {algorithm:?}; only RS256, ES256 and EdDSA are accepted"
            )));
        }
        if !self.keys.is_loaded() {
            return Err(AuthError::KeysUnavailable);
        }
        let kid = header.kid.as_deref();
        let seen = self.keys.generation();
        let mut set = self.keys.current();
        if let Some(kid) = kid
            && !set.has_kid(kid)
            && self.keys.refresh_for_unknown_kid(seen).await
        {
            set = self.keys.current();
        }
        let validation = self
            .validations
            .iter()
            .find(|(alg, _)| *alg == algorithm)
            .map(|(_, validation)| validation)
            .ok_or_else(|| AuthError::invalid("the token's algorithm is not accepted"))?;
        let mut outcome = None;
        for key in set.candidates(kid, algorithm) {
            match jsonwebtoken::decode::<Claims>(token, &key.key, validation) {
                Ok(data) => {
                    outcome = Some(Ok(data.claims));
                    break;
                }
                // Without a `kid`, another key of the same algorithm may be the one.
                Err(error) if matches!(error.kind(), ErrorKind::InvalidSignature) => {
                    outcome.get_or_insert(Err(error));
                }
                Err(error) => {
                    outcome = Some(Err(error));
                    break;
                }
            }
        }
        let claims = match outcome {
            Some(Ok(claims)) => claims,
            Some(Err(error)) => return Err(self.claims_error(&error)),
            None => {
                return Err(AuthError::invalid(match kid {
                    Some(kid) if set.has_kid(kid) => {
                        format!("the token's key {kid:?} is not a {algorithm:?} key")
                    }
                    Some(kid) => format!("the token is signed with an unknown key id {kid:?}"),
                    None => format!("no {algorithm:?} key to verify the token with"),
                }));
            }
        };
        let subject = claims
            .sub
            .filter(|sub| !sub.trim().is_empty())
            .ok_or_else(|| AuthError::invalid("the token's `sub` is empty"))?;
        Ok(Identity {
            admin: has_scope(&claims.scope, ADMIN_SCOPE),
            subject,
        })
    }

    fn claims_error(&self, error: &jsonwebtoken::errors::Error) -> AuthError {
        AuthError::invalid(match error.kind() {
            ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
            ErrorKind::ExpiredSignature => "the token has expired (`exp`)".to_owned(),
            ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)".to_owned(),
            ErrorKind::InvalidIssuer => {
                format!("the token's issuer (`iss`) is not {:?}", self.issuer)
            }
            ErrorKind::InvalidAudience => {
                format!(
                    "the token's audience (`aud`) does not include {:?}",
                    self.audience
                )
            }
            ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
            ErrorKind::InvalidAlgorithm => "the token's algorithm does not fit its key".to_owned(),
            ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                "the token's parts are not base64url-encoded JSON".to_owned()
            }
            ErrorKind::Json(_) => "the token's claims are not the JSON expected".to_owned(),
            _ => "the token is not valid".to_owned(),
        })
    }
}

/// What is wrong with a header that does not parse.
fn header_error(error: &jsonwebtoken::errors::Error) -> AuthError {
    AuthError::invalid(match error.kind() {
        ErrorKind::InvalidToken => "the token is not a JWT (three base64url parts)",
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => "the token's header is not base64url",
        // serde names the unknown `alg` (`none`, …) only as an unknown variant.
        ErrorKind::Json(_) => {
            "the token's header is not a JOSE header with an accepted algorithm \
             (RS256, ES256 or EdDSA; never none)"
        }
        _ => "the token's header is not valid",
    })
}

/// Whether a `scope` claim (space-separated text, or a list) holds `wanted`.
fn has_scope(scope: &serde_json::Value, wanted: &str) -> bool {
    match scope {
        serde_json::Value::String(text) => text.split_ascii_whitespace().any(|s| s == wanted),
        serde_json::Value::Array(list) => list.iter().any(|s| s.as_str() == Some(wanted)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_admin_scope_is_one_word_of_the_scope_claim() {
        assert!(has_scope(&json!("openid orders:admin"), ADMIN_SCOPE));
        assert!(has_scope(&json!(["orders:admin"]), ADMIN_SCOPE));
        assert!(!has_scope(&json!("orders:administrator"), ADMIN_SCOPE));
        assert!(!has_scope(&json!(null), ADMIN_SCOPE));
        assert!(!has_scope(&json!(7), ADMIN_SCOPE));
    }
}
