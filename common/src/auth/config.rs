//! `AUTH_*`: whether the API needs a JWT, and how to check one (CONTRACT §12). Read once
//! at start; a bad value stops the service naming its variable.

use super::discovery::{check_key_url, discovery_url};
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
/// The variables that configure authentication, which `AUTH_DISABLED=true` overrides.
const AUTH_VARIABLES: [&str; 4] = [
    "AUTH_JWKS_URL",
    "AUTH_PUBLIC_KEY",
    "AUTH_ISSUER",
    "AUTH_AUDIENCE",
];

/// Whether the API needs a token.
#[derive(Debug, Clone)]
pub enum AuthSetting {
    /// Nothing configures authentication: the API is open, as in the original.
    Unconfigured,
    /// `AUTH_DISABLED=true`: open on purpose, whatever these `AUTH_*` variables say.
    Disabled { ignored: Vec<&'static str> },
    /// Every `/api/` route needs a valid token.
    On(AuthConfig),
}

impl AuthSetting {
    /// How tokens are checked, when they are.
    pub fn config(&self) -> Option<&AuthConfig> {
        match self {
            Self::On(config) => Some(config),
            Self::Unconfigured | Self::Disabled { .. } => None,
        }
    }
}

/// Where a JWKS document is found.
#[derive(Debug, Clone)]
pub enum JwksLocation {
    /// `AUTH_JWKS_URL`.
    Url(reqwest::Url),
    /// The `jwks_uri` of the issuer's discovery document at this URL.
    Discovery(reqwest::Url),
}

impl std::fmt::Display for JwksLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(url) => write!(f, "AUTH_JWKS_URL {url}"),
            Self::Discovery(url) => {
                write!(f, "the jwks_uri of AUTH_ISSUER's discovery document {url}")
            }
        }
    }
}

/// Where the keys that sign valid tokens come from.
#[derive(Clone)]
pub enum KeySource {
    /// A JWKS document (an OpenID provider's `jwks_uri`), fetched and refreshed.
    Jwks {
        location: JwksLocation,
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
        f.debug_struct("AuthConfig")
            .field("keys", &self.keys_description())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl AuthConfig {
    /// Where the keys come from, for logs.
    pub fn keys_description(&self) -> String {
        match &self.keys {
            KeySource::Jwks { location, .. } => location.to_string(),
            KeySource::Pem(set) => format!("{} PEM key(s) from AUTH_PUBLIC_KEY", set.len()),
        }
    }

    /// On with `AUTH_JWKS_URL`, `AUTH_PUBLIC_KEY`, or `AUTH_ISSUER` alone (its discovery
    /// document names the keys); off with none of them, or with `AUTH_DISABLED=true`.
    pub fn from_vars(vars: &Vars) -> Result<AuthSetting, ConfigError> {
        let disabled = vars.get_or("AUTH_DISABLED", Flag(false))?.0;
        let jwks_url = vars.get::<String>("AUTH_JWKS_URL")?;
        let public_key = vars.get::<String>("AUTH_PUBLIC_KEY")?;
        let issuer = vars.get::<String>("AUTH_ISSUER")?;
        if disabled {
            let ignored = AUTH_VARIABLES
                .into_iter()
                .filter(|name| vars.get::<String>(name).ok().flatten().is_some())
                .collect();
            return Ok(AuthSetting::Disabled { ignored });
        }
        let audience = vars.get_or("AUTH_AUDIENCE", DEFAULT_AUDIENCE.to_owned())?;
        let refresh = Duration::from_secs(positive(
            vars,
            "AUTH_JWKS_REFRESH_SECS",
            DEFAULT_REFRESH.as_secs(),
        )?);
        let min_interval = Duration::from_secs(positive(
            vars,
            "AUTH_JWKS_MIN_INTERVAL_SECS",
            DEFAULT_MIN_INTERVAL.as_secs(),
        )?);
        let jwks = |location| KeySource::Jwks {
            location,
            refresh,
            min_interval,
        };
        let keys = match (jwks_url, public_key, &issuer) {
            (None, None, None) => return Ok(AuthSetting::Unconfigured),
            (Some(_), Some(_), _) => {
                return Err(invalid(
                    "AUTH_PUBLIC_KEY",
                    "…",
                    "set AUTH_JWKS_URL or AUTH_PUBLIC_KEY, not both",
                ));
            }
            (Some(url), None, _) => jwks(JwksLocation::Url(key_url("AUTH_JWKS_URL", &url)?)),
            (None, Some(pem), _) => KeySource::Pem(read_pem(&pem)?),
            (None, None, Some(issuer)) => {
                let url = discovery_url(issuer).map_err(|error| {
                    invalid(
                        "AUTH_ISSUER",
                        issuer,
                        format!(
                            "without AUTH_JWKS_URL or AUTH_PUBLIC_KEY, AUTH_ISSUER must be the \
                             provider's URL, whose discovery document names the keys: {error}"
                        ),
                    )
                })?;
                check_key_url(&url).map_err(|reason| {
                    invalid(
                        "AUTH_ISSUER",
                        issuer,
                        format!("its discovery document {reason}"),
                    )
                })?;
                jwks(JwksLocation::Discovery(url))
            }
        };
        let Some(issuer) = issuer else {
            return Err(invalid(
                "AUTH_ISSUER",
                "",
                "required when authentication is on (AUTH_JWKS_URL or AUTH_PUBLIC_KEY is set): \
                 the `iss` every token must carry",
            ));
        };
        Ok(AuthSetting::On(Self {
            keys,
            issuer,
            audience,
        }))
    }
}

/// `AUTH_DISABLED`: `true` or `false`, nothing that merely looks like one.
struct Flag(bool);

impl std::str::FromStr for Flag {
    type Err = &'static str;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "true" => Ok(Self(true)),
            "false" => Ok(Self(false)),
            _ => Err("expected `true` or `false`"),
        }
    }
}

/// `AUTH_JWKS_URL`: a URL that keeps to the https rule.
fn key_url(name: &str, value: &str) -> Result<reqwest::Url, ConfigError> {
    let url: reqwest::Url = value.parse().map_err(|error| invalid(name, value, error))?;
    check_key_url(&url).map_err(|reason| invalid(name, value, reason))?;
    Ok(url)
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

    fn on(pairs: &[(&str, &str)]) -> AuthConfig {
        match AuthConfig::from_vars(&Vars::from_pairs(pairs.iter().copied())).unwrap() {
            AuthSetting::On(config) => config,
            other => panic!("{pairs:?}: {other:?}"),
        }
    }

    #[test]
    fn without_any_auth_variable_authentication_is_off() {
        let setting = AuthConfig::from_vars(&Vars::from_pairs([])).unwrap();
        assert!(matches!(setting, AuthSetting::Unconfigured), "{setting:?}");
    }

    #[test]
    fn an_issuer_alone_finds_its_keys_by_discovery() {
        let config = on(&[("AUTH_ISSUER", "https://id.example/realms/shop/")]);
        assert_eq!(config.issuer, "https://id.example/realms/shop/");
        let KeySource::Jwks {
            location: JwksLocation::Discovery(url),
            ..
        } = config.keys
        else {
            panic!("not discovery: {config:?}");
        };
        assert_eq!(
            url.as_str(),
            "https://id.example/realms/shop/.well-known/openid-configuration"
        );
        let local = on(&[("AUTH_ISSUER", "http://127.0.0.1:9000")]);
        assert!(matches!(local.keys, KeySource::Jwks { .. }));
    }

    #[test]
    fn key_sources_over_plain_http_elsewhere_stop_the_service_naming_their_variable() {
        for (name, value) in [
            ("AUTH_ISSUER", "http://id.example"),
            ("AUTH_ISSUER", "shop"),
            ("AUTH_JWKS_URL", "http://id.example/jwks"),
        ] {
            let mut pairs = vec![(name, value)];
            if name == "AUTH_JWKS_URL" {
                pairs.push(("AUTH_ISSUER", "https://id.example"));
            }
            let error = AuthConfig::from_vars(&Vars::from_pairs(pairs)).unwrap_err();
            assert_eq!(error.name, name, "{value}: {error}");
        }
        let local = on(&[
            ("AUTH_JWKS_URL", "http://localhost:8080/jwks"),
            ("AUTH_ISSUER", "https://id.example"),
        ]);
        assert!(matches!(
            local.keys,
            KeySource::Jwks {
                location: JwksLocation::Url(_),
                ..
            }
        ));
    }

    #[test]
    fn auth_disabled_true_turns_it_off_whatever_else_is_set() {
        let vars = Vars::from_pairs([
            ("AUTH_DISABLED", "true"),
            ("AUTH_ISSUER", "https://id.example"),
            ("AUTH_JWKS_URL", "https://id.example/jwks"),
        ]);
        let setting = AuthConfig::from_vars(&vars).unwrap();
        let AuthSetting::Disabled { ignored } = setting else {
            panic!("{setting:?}");
        };
        assert_eq!(ignored, ["AUTH_JWKS_URL", "AUTH_ISSUER"]);
        let off = AuthConfig::from_vars(&Vars::from_pairs([
            ("AUTH_DISABLED", "false"),
            ("AUTH_ISSUER", "https://id.example"),
        ]))
        .unwrap();
        assert!(off.config().is_some());
        for value in ["yes", "1", "TRUE"] {
            let error =
                AuthConfig::from_vars(&Vars::from_pairs([("AUTH_DISABLED", value)])).unwrap_err();
            assert_eq!(error.name, "AUTH_DISABLED", "{value}");
        }
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
        let config = on(&[
            ("AUTH_PUBLIC_KEY", ED25519_PUBLIC),
            ("AUTH_ISSUER", "https://id.example"),
        ]);
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
