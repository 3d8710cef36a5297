//! TLS to RabbitMQ, set in `AMQP_URL` itself with the query parameters of RabbitMQ's own
//! URI spec (<https://www.rabbitmq.com/docs/uri-query-parameters>), so one value still
//! describes one node completely and a list of nodes can mix them:
//!
//! - `amqps://` turns TLS on; the server's certificate is always verified, against the
//!   system's roots and the CA in `cacertfile` (PEM), for the host name in the URL;
//! - `certfile` and `keyfile` (PEM, together) present a client certificate (mutual TLS);
//! - `verify=verify_peer` is accepted (it is what happens); `verify_none` and
//!   `server_name_indication` are refused: verification cannot be turned off, and the name
//!   verified is the URL's host (the TLS library gives no other).
//!
//! The files are read and checked when the configuration is read, so a wrong path or a
//! key that does not match its certificate stops the service at start, naming `AMQP_URL`.

use crate::tls::{read_certificates, read_private_key};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig, RustlsConnectorConfig};
use std::collections::HashMap;

/// The TLS parameters of one node's URL: `Ok(None)` for `amqp://`, the settings to connect
/// with for `amqps://`. The error names the parameter and never repeats the URL.
pub(crate) fn settings(url: &str) -> Result<Option<OwnedTLSConfig>, String> {
    let parsed = url::Url::parse(url).map_err(|_| "not a valid AMQP URL".to_owned())?;
    let params: HashMap<String, String> = parsed.query_pairs().into_owned().collect();
    let param = |name: &str| params.get(name).filter(|value| !value.is_empty());

    if param("server_name_indication").is_some() {
        return Err(
            "server_name_indication is not supported: the server's certificate is \
                    verified for the host in the URL, so connect by a name it is issued for"
                .to_owned(),
        );
    }
    match param("verify").map(String::as_str) {
        None | Some("verify_peer") => {}
        Some(_) => {
            return Err(
                "verify: only verify_peer; the server's certificate is always verified".to_owned(),
            );
        }
    }
    let cacertfile = param("cacertfile");
    let identity = match (param("certfile"), param("keyfile")) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err(
                "certfile and keyfile go together (a client certificate and its key)".to_owned(),
            );
        }
    };
    if parsed.scheme() != "amqps" {
        if cacertfile.is_some() || identity.is_some() {
            return Err("cacertfile, certfile and keyfile need an amqps:// URL".to_owned());
        }
        return Ok(None);
    }

    let mut check = RustlsConnectorConfig::new_with_platform_verifier();
    let mut config = OwnedTLSConfig::default();
    if let Some(path) = cacertfile {
        check.add_parsable_certificates(read_certificates("cacertfile", path)?);
        config.cert_chain = Some(read_text("cacertfile", path)?);
    }
    // Build the connector once here, so a CA that cannot be a root or a key that does not
    // match its certificate is a configuration error, not a failure at every connection.
    let checked = match identity {
        Some((cert, key)) => {
            let chain = read_certificates("certfile", cert)?;
            let private_key = read_private_key("keyfile", key)?;
            config.identity = Some(OwnedIdentity::PKCS8 {
                pem: read_text("certfile", cert)?.into_bytes(),
                key: read_text("keyfile", key)?.into_bytes(),
            });
            check.connector_with_single_cert(chain, private_key)
        }
        None => check.connector_with_no_client_auth(),
    };
    checked.map_err(|error| format!("the TLS settings cannot be used: {error}"))?;
    Ok(Some(config))
}

fn read_text(param: &str, path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("{param}={path} cannot be read: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_need_no_tls_and_refuse_its_parameters() {
        assert!(settings("amqp://u:pw@h/%2f").unwrap().is_none());
        let error = settings("amqp://u:pw@h/%2f?cacertfile=/ca.pem").unwrap_err();
        assert!(error.contains("need an amqps:// URL"), "{error}");
    }

    #[test]
    fn amqps_without_a_ca_trusts_the_system_roots() {
        let config = settings("amqps://u:pw@h/%2f").unwrap().unwrap();
        assert_eq!(config, OwnedTLSConfig::default());
    }

    #[test]
    fn turning_verification_off_or_renaming_the_server_is_refused() {
        for (url, expected) in [
            ("amqps://h/%2f?verify=verify_none", "always verified"),
            (
                "amqps://h/%2f?server_name_indication=other",
                "not supported",
            ),
            ("amqps://h/%2f?certfile=/c.pem", "go together"),
        ] {
            let error = settings(url).unwrap_err();
            assert!(error.contains(expected), "{url}: {error}");
        }
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let error = settings("amqps://u:pw@h/%2f?cacertfile=/nonexistent/ca.pem").unwrap_err();
        assert!(
            error.contains("cacertfile=/nonexistent/ca.pem cannot be read"),
            "{error}"
        );
        assert!(!error.contains("pw"), "{error}");
    }
}
