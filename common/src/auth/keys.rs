//! The public keys that sign valid tokens: parsed from a JWKS document or a PEM key, each
//! bound to the one asymmetric algorithm it verifies, so a token cannot pick another
//! (an HMAC "signed" with the public key's bytes, `alg: none`).

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::sync::Arc;

/// The algorithms a token may be signed with (CONTRACT §12): never `none`, never HMAC.
pub const ACCEPTED: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// One key and the algorithm it verifies.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The JWK's `kid`; `None` for a PEM key (or a JWK without one).
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    pub key: Arc<DecodingKey>,
}

/// The keys in force, in the order the source listed them.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, for logs.
    pub fn kids(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|key| key.kid.clone().unwrap_or_else(|| "(no kid)".into()))
            .collect()
    }

    /// The key that may have signed a token with this header: the one with its `kid`, or
    /// without a `kid` in the token, the keys for its algorithm.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        algorithm: Algorithm,
    ) -> impl Iterator<Item = &'a VerifyingKey> + 'a {
        self.keys.iter().filter(move |key| {
            key.algorithm == algorithm
                && match kid {
                    Some(kid) => key.kid.as_deref() == Some(kid),
                    None => true,
                }
        })
    }

    /// Whether a key with this id is in the set.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// A PEM public key (SPKI `PUBLIC KEY`, or `RSA PUBLIC KEY`): RSA verifies RS256, a
    /// P-256 key ES256, an Ed25519 key EdDSA.
    pub fn from_pem(text: &str) -> Result<Self, String> {
        if text.contains("PRIVATE KEY") {
            return Err("this is a private key: give the public key".into());
        }
        let bytes = text.as_bytes();
        let (key, algorithm) = if let Ok(key) = DecodingKey::from_ed_pem(bytes) {
            (key, Algorithm::EdDSA)
        } else if let Ok(key) = DecodingKey::from_ec_pem(bytes) {
            (key, Algorithm::ES256)
        } else if let Ok(key) = DecodingKey::from_rsa_pem(bytes) {
            (key, Algorithm::RS256)
        } else {
            return Err("not a PEM public key of RSA, P-256 or Ed25519".into());
        };
        Ok(Self {
            keys: vec![VerifyingKey {
                kid: None,
                algorithm,
                key: Arc::new(key),
            }],
        })
    }

    /// A JWKS document. Keys for encryption, of symmetric or unknown types, or for an
    /// algorithm outside [`ACCEPTED`] are left out (and named in the second value, for the
    /// log); a document without any usable key is an error.
    pub fn from_jwks(body: &[u8]) -> Result<(Self, Vec<String>), String> {
        let set: JwkSet = serde_json::from_slice(body)
            .map_err(|error| format!("not a JWKS document: {error}"))?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone();
            let name = kid.clone().unwrap_or_else(|| "(no kid)".into());
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                skipped.push(format!("{name}: an encryption key"));
                continue;
            }
            let Some(algorithm) = algorithm_of(jwk.common.key_algorithm, &jwk.algorithm) else {
                skipped.push(format!("{name}: not an RS256, ES256 or EdDSA signing key"));
                continue;
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => keys.push(VerifyingKey {
                    kid,
                    algorithm,
                    key: Arc::new(key),
                }),
                Err(error) => skipped.push(format!("{name}: {error}")),
            }
        }
        if keys.is_empty() {
            return Err(format!(
                "the JWKS document has no usable signing key ({})",
                if skipped.is_empty() {
                    "it is empty".to_owned()
                } else {
                    skipped.join("; ")
                }
            ));
        }
        Ok((Self { keys }, skipped))
    }
}

/// The algorithm a JWK verifies: its `alg` if it names one we accept and fits its key type,
/// else what its key type implies.
fn algorithm_of(
    declared: Option<KeyAlgorithm>,
    parameters: &AlgorithmParameters,
) -> Option<Algorithm> {
    let implied = match parameters {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    match declared {
        None => Some(implied),
        Some(alg) => {
            let declared = match alg {
                KeyAlgorithm::RS256 => Algorithm::RS256,
                KeyAlgorithm::ES256 => Algorithm::ES256,
                KeyAlgorithm::EdDSA => Algorithm::EdDSA,
                _ => return None,
            };
            (declared == implied).then_some(implied)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_encryption_keys_are_left_out_of_a_jwks() {
        let body = br#"{"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0", "alg": "HS256"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc",
             "x": "Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed",
             "x": "Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE"}
        ]}"#;
        let (set, skipped) = KeySet::from_jwks(body).unwrap();
        assert_eq!(set.kids(), ["ed"]);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert_eq!(set.candidates(Some("ed"), Algorithm::EdDSA).count(), 1);
        assert_eq!(set.candidates(Some("ed"), Algorithm::ES256).count(), 0);
    }

    #[test]
    fn a_jwks_without_a_usable_key_is_refused() {
        assert!(KeySet::from_jwks(br#"{"keys": []}"#).is_err());
        assert!(KeySet::from_jwks(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).is_err());
        assert!(KeySet::from_jwks(b"<html>").is_err());
    }

    #[test]
    fn a_private_key_is_not_taken_for_a_public_one() {
        let error =
            KeySet::from_pem("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----")
                .err()
                .unwrap();
        assert!(error.contains("private"), "{error}");
    }
}
