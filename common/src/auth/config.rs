//! `AUTH_*`: whether the API needs a JWT, and how to check one (CONTRACT §12). Read once
//! at start; a bad value stops the service naming its variable.

use super::discovery::{check_key_url, discovery_url};
use super::keys::KeySet;
use crate::vars::{ConfigError, Vars, invalid, positive};
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
mod tests;
