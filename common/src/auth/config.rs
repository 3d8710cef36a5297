//! `AUTH_*`: whether the API needs a JWT, and how to check one (CONTRACT §12). Read once
//! at start; a bad value stops the service naming its variable.

use super::keys::KeySet;
use crate::config::{ConfigError, Vars, invalid, positive};
use std::time::Duration;

/// The audience a token must name when `AUTH_AUDIENCE` is unset.
pub const DEFAULT_AUDIENCE: &str = "orders-api";
/// How often the key set is fetched again when nothing asks sooner (`AUTH_JWKS_REFRESH_SECS`).
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(600);
/// The least time between two fetches of the key set (`AUTH_JWKS_MIN_INTERVAL_SECS`), so a
/// flood of tokens naming made-up key ids cannot hammer the provider.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(30);

/// Where the keys that sign valid tokens come from.
#[derive(Clone)]
pub enum KeySource {
    /// A JWKS document (an OpenID provider's `jwks_uri`), fetched and refreshed.
    Jwks {
        url: reqwest::Url,
        /// Fetched again this often.
        refresh: Duration,
        /// Never fetched twice within this.
        min_interval: Duration,
    },
    /// A PEM public key, read once (`AUTH_PUBLIC_KEY`).
    Pem(KeySet),
}

/// Authentication is on: how a token is checked.
#[derive(Clone)]
pub struct AuthConfig {
    pub keys: KeySource,
    /// `iss` must equal this (`AUTH_ISSUER`).
    pub issuer: String,
    /// `aud` must contain this (`AUTH_AUDIENCE`).
    pub audience: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = match &self.keys {
            KeySource::Jwks { url, .. } => format!("jwks {url}"),
            KeySource::Pem(set) => format!("{} PEM key(s)", set.len()),
        };
        f.debug_struct("AuthConfig")
            .field("keys", &keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl AuthConfig {
    /// `None` when neither `AUTH_JWKS_URL` nor `AUTH_PUBLIC_KEY` is set: the API is open.
    pub fn from_vars(vars: &Vars) -> Result<Option<Self>, ConfigError> {
        let jwks_url = vars.get::<String>("AUTH_JWKS_URL")?;
        let public_key = vars.get::<String>("AUTH_PUBLIC_KEY")?;
        let issuer = vars.get::<String>("AUTH_ISSUER")?;
        let audience = vars.get_or("AUTH_AUDIENCE", DEFAULT_AUDIENCE.to_owned())?;
        let refresh = positive(vars, "AUTH_JWKS_REFRESH_SECS", DEFAULT_REFRESH.as_secs())?;
        let min_interval = positive(
            vars,
            "AUTH_JWKS_MIN_INTERVAL_SECS",
            DEFAULT_MIN_INTERVAL.as_secs(),
        )?;
        let keys = match (jwks_url, public_key) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "AUTH_PUBLIC_KEY",
                    "…",
                    "set AUTH_JWKS_URL or AUTH_PUBLIC_KEY, not both",
                ));
            }
            (Some(url), None) => {
                let parsed: reqwest::Url = url
                    .parse()
                    .map_err(|error| invalid("AUTH_JWKS_URL", &url, error))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid(
                        "AUTH_JWKS_URL",
                        &url,
                        "must be an http or https URL",
                    ));
                }
                KeySource::Jwks {
                    url: parsed,
                    refresh: Duration::from_secs(refresh),
                    min_interval: Duration::from_secs(min_interval),
                }
            }
            (None, Some(pem)) => KeySource::Pem(read_pem(&pem)?),
        };
        let Some(issuer) = issuer else {
            return Err(invalid(
                "AUTH_ISSUER",
                "",
                "required when authentication is on (AUTH_JWKS_URL or AUTH_PUBLIC_KEY is set): \
                 the `iss` every token must carry",
            ));
        };
        Ok(Some(Self {
            keys,
            issuer,
            audience,
        }))
    }
}

/// `AUTH_PUBLIC_KEY`: the PEM text itself, or the path of a file holding it.
fn read_pem(value: &str) -> Result<KeySet, ConfigError> {
    let shown = if value.contains("-----BEGIN") {
        "<PEM>"
    } else {
        value
    };
    let text = if value.contains("-----BEGIN") {
        value.to_owned()
    } else {
        std::fs::read_to_string(value).map_err(|error| {
            invalid(
                "AUTH_PUBLIC_KEY",
                shown,
                format!("neither a PEM public key nor a readable file: {error}"),
            )
        })?
    };
    KeySet::from_pem(&text).map_err(|reason| invalid("AUTH_PUBLIC_KEY", shown, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\n\
        MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
        -----END PUBLIC KEY-----\n";

    #[test]
    fn without_a_key_source_authentication_is_off() {
        let vars = Vars::from_pairs([("AUTH_ISSUER", "https://id.example")]);
        assert!(AuthConfig::from_vars(&vars).unwrap().is_none());
    }

    #[test]
    fn a_key_source_without_an_issuer_names_auth_issuer() {
        for (name, value) in [
            ("AUTH_JWKS_URL", "https://id.example/jwks"),
            ("AUTH_PUBLIC_KEY", ED25519_PUBLIC),
        ] {
            let error = AuthConfig::from_vars(&Vars::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(error.name, "AUTH_ISSUER", "{error}");
        }
    }

    #[test]
    fn a_pem_key_and_the_default_audience_are_read() {
        let vars = Vars::from_pairs([
            ("AUTH_PUBLIC_KEY", ED25519_PUBLIC),
            ("AUTH_ISSUER", "https://id.example"),
        ]);
        let config = AuthConfig::from_vars(&vars).unwrap().unwrap();
        assert_eq!(config.audience, "orders-api");
        assert!(matches!(config.keys, KeySource::Pem(ref set) if set.len() == 1));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            (
                "AUTH_PUBLIC_KEY",
                "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----",
            ),
            ("AUTH_PUBLIC_KEY", "/no/such/key.pem"),
            ("AUTH_JWKS_URL", "ftp://id.example/jwks"),
            ("AUTH_JWKS_URL", "not a url"),
            ("AUTH_JWKS_REFRESH_SECS", "0"),
        ] {
            let mut pairs = vec![(name, value), ("AUTH_ISSUER", "https://id.example")];
            if name == "AUTH_JWKS_REFRESH_SECS" {
                pairs.push(("AUTH_JWKS_URL", "https://id.example/jwks"));
            }
            let error = AuthConfig::from_vars(&Vars::from_pairs(pairs)).unwrap_err();
            assert_eq!(error.name, name, "{value}: {error}");
        }
        let both = Vars::from_pairs([
            ("AUTH_PUBLIC_KEY", ED25519_PUBLIC),
            ("AUTH_JWKS_URL", "https://id.example/jwks"),
            ("AUTH_ISSUER", "https://id.example"),
        ]);
        assert!(AuthConfig::from_vars(&both).is_err());
    }
}
