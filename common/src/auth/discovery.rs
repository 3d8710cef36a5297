//! Where signing keys may come from, and finding them through OpenID discovery.
//!
//! Whoever can change the key set can mint tokens, so a key set travels only over TLS: a
//! JWKS or discovery URL must be `https`, except on a loopback address (a provider beside
//! the service, or a test's). With only `AUTH_ISSUER` set, the keys are the ones its
//! discovery document (`{issuer}/.well-known/openid-configuration`, what Keycloak, Auth0,
//! Entra and Google publish) names as `jwks_uri` — read again at every refresh, so a
//! provider that moves its keys is followed.

use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;

/// A document larger than this is refused (a real JWKS or discovery document is a few KiB).
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Redirects followed at most, each to a URL the same rule allows.
const MAX_REDIRECTS: usize = 5;

/// Why a URL may not serve keys, or `Ok` when it may: `https`, or `http` on a loopback
/// address.
pub fn check_key_url(url: &reqwest::Url) -> Result<(), &'static str> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(
            "must be https (plain http is allowed only on a loopback address): whoever can \
             change the keys on the way can mint tokens",
        ),
        _ => Err("must be an https URL"),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The discovery document's URL of an issuer (OpenID Connect Discovery 1.0, §4).
pub fn discovery_url(issuer: &str) -> Result<reqwest::Url, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    url.parse().map_err(|error| format!("{error}"))
}

/// An HTTP client for key sources: bounded in time, following only redirects that keep to
/// the https rule.
pub fn client(timeout: Duration) -> reqwest::Client {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if let Err(reason) = check_key_url(attempt.url()) {
            let to = attempt.url().to_string();
            attempt.error(format!("a redirect to {to}: {reason}"))
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(redirects)
        .build()
        .unwrap_or_default()
}

/// The parts of a discovery document we read.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// Reads the discovery document at `url` and returns its `jwks_uri`, after checking that
/// the document speaks for `issuer` (§4.3: its `issuer` is exactly the one asked about)
/// and that the key URL keeps to the https rule.
pub async fn jwks_uri(
    http: &reqwest::Client,
    url: &reqwest::Url,
    issuer: &str,
) -> Result<reqwest::Url, String> {
    let body = get(http, url, "application/json").await?;
    let document: Discovery = serde_json::from_slice(&body)
        .map_err(|error| format!("the discovery document {url} is not one: {error}"))?;
    if document.issuer != issuer {
        return Err(format!(
            "the discovery document {url} is for issuer {:?}, not AUTH_ISSUER {issuer:?}",
            document.issuer
        ));
    }
    let jwks: reqwest::Url = document.jwks_uri.parse().map_err(|error| {
        format!(
            "the discovery document's jwks_uri {:?} is not a URL: {error}",
            document.jwks_uri
        )
    })?;
    check_key_url(&jwks).map_err(|reason| format!("its jwks_uri {jwks} {reason}"))?;
    Ok(jwks)
}

/// `GET url`, its body up to [`MAX_DOCUMENT_BYTES`].
pub async fn get(
    http: &reqwest::Client,
    url: &reqwest::Url,
    accept: &str,
) -> Result<Vec<u8>, String> {
    let mut response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, accept)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| error.without_url().to_string())?;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| error.without_url().to_string())?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("{url} is over {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Result<(), &'static str> {
        check_key_url(&url.parse().unwrap())
    }

    #[test]
    fn keys_travel_over_https_or_stay_on_this_host() {
        for allowed in [
            "https://id.example.com/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://127.9.9.9/jwks",
            "http://[::1]:8080/jwks",
            "http://localhost:8080/jwks",
            "http://LOCALHOST/jwks",
        ] {
            assert_eq!(check(allowed), Ok(()), "{allowed}");
        }
        for refused in [
            "http://id.example.com/jwks",
            "http://10.0.0.5/jwks",
            "http://localhost.example.com/jwks",
            "http://0.0.0.0/jwks",
            "ftp://id.example.com/jwks",
        ] {
            assert!(check(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn the_discovery_document_sits_under_the_issuer() {
        for issuer in [
            "https://id.example/realms/shop",
            "https://id.example/realms/shop/",
        ] {
            assert_eq!(
                discovery_url(issuer).unwrap().as_str(),
                "https://id.example/realms/shop/.well-known/openid-configuration"
            );
        }
    }
}
