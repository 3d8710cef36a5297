//! `devstack --auth`: customer authentication (CONTRACT §12) on the laptop, without an
//! OpenID provider. A key pair is made for the run; the services get its public half
//! (`AUTH_PUBLIC_KEY`) and the issuer [`ISSUER`], and the launcher signs two tokens with
//! the private half: one for a customer, one with `orders:admin`.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `iss` of the launcher's tokens (`AUTH_ISSUER`).
pub const ISSUER: &str = "devstack";
/// The audience the services expect by default (`AUTH_AUDIENCE`).
pub const AUDIENCE: &str = "orders-api";
/// How long the printed tokens are good for.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// This run's signing key.
pub struct DevIssuer {
    encoding: EncodingKey,
    /// The public key, PEM (SPKI), for `AUTH_PUBLIC_KEY`.
    pub public_pem: String,
}

impl DevIssuer {
    /// A fresh P-256 key pair (ES256).
    pub fn generate() -> Result<Self, String> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|error| format!("cannot make a key pair: {error}"))?;
        let encoding = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())
            .map_err(|error| format!("cannot read the key pair back: {error}"))?;
        Ok(Self {
            encoding,
            public_pem: pair.public_key_pem(),
        })
    }

    /// A token for `subject`, with `scope` if given, valid for [`TOKEN_LIFETIME`].
    pub fn token(&self, subject: &str, scope: Option<&str>) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|error| error.to_string())?
            .as_secs();
        let mut claims = json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "exp": now + TOKEN_LIFETIME.as_secs(),
        });
        if let Some(scope) = scope {
            claims["scope"] = json!(scope);
        }
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.encoding)
            .map_err(|error| format!("cannot sign a token: {error}"))
    }
}
