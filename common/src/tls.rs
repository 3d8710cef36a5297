//! TLS to RabbitMQ and PostgreSQL, the parts both links share: reading the PEM files an
//! operator names (at start-up, so a wrong path stops the service before it connects
//! anywhere) and telling a failed TLS handshake — a setting to fix — from a server that is
//! not there yet, which is worth waiting for.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{AlertDescription, CertificateError};

/// The certificates of a PEM file; `param` names the setting in the message. Paths are
/// shown (they are not secret), file contents never.
pub fn read_certificates(param: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(param, path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{param}={path} is not a PEM certificate file: {error}"))?;
    if certificates.is_empty() {
        return Err(format!("{param}={path} holds no PEM certificate"));
    }
    Ok(certificates)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1), unencrypted.
pub fn read_private_key(param: &str, path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read(param, path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|error| format!("{param}={path} holds no usable PEM private key: {error}"))
}

fn read(param: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("{param}={path} cannot be read: {error}"))
}

/// The TLS error behind a failed connection, if a TLS handshake is what failed. Both lapin
/// and sqlx hand it over wrapped in an `io::Error`, whose `source()` skips the error it wraps,
/// so the chain is walked through `get_ref` as well.
pub fn handshake_failure<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as _),
            None => error.source(),
        };
    }
    None
}

/// The URL parameters a handshake failure points at: the CA's, and the client
/// certificate's.
pub struct Params {
    pub ca: &'static str,
    pub client: &'static str,
}

/// What a failed handshake most likely means, for the operator reading the log: which
/// side's certificate is wrong and which setting to look at. rustls's own words follow it.
pub fn explain(error: &rustls::Error, params: &Params) -> String {
    let Params {
        ca: ca_param,
        client: client_params,
    } = params;
    use rustls::Error as E;
    let meaning = match error {
        E::InvalidCertificate(certificate) => match certificate {
            CertificateError::UnknownIssuer => format!(
                "the server's certificate is not signed by a CA this service trusts: \
                 {ca_param} must name the CA that issued it"
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired: renew it on the server".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (check the clocks)".to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the server's certificate is not issued for the host name in the URL".to_owned()
            }
            _ => "the server's certificate was rejected".to_owned(),
        },
        not_tls if is_not_tls(not_tls) => {
            "the server did not answer in TLS: is this a plaintext port?".to_owned()
        }
        E::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::HandshakeFailure
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied,
        ) => format!(
            "the server refused the handshake: it wants a client certificate it trusts \
             ({client_params})"
        ),
        _ => "the TLS handshake failed".to_owned(),
    };
    format!("{meaning} ({error})")
}

/// The peer's bytes were not TLS at all: a plaintext port.
pub fn is_not_tls(error: &rustls::Error) -> bool {
    matches!(
        error,
        rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_error_is_found_inside_the_io_errors_that_carry_it() {
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let lapin = lapin::Error::from(io);
        let found = handshake_failure(&lapin).expect("the TLS error is found");
        let params = Params {
            ca: "cacertfile",
            client: "certfile/keyfile",
        };
        assert!(explain(found, &params).contains("cacertfile must name the CA"));

        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(handshake_failure(&lapin::Error::from(refused)).is_none());
    }

    #[test]
    fn a_missing_or_empty_file_is_named_with_its_setting() {
        let error = read_certificates("cacertfile", "/nonexistent/ca.pem").unwrap_err();
        assert!(
            error.starts_with("cacertfile=/nonexistent/ca.pem cannot be read"),
            "{error}"
        );

        let empty = std::env::temp_dir().join(format!("empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let path = empty.to_str().unwrap();
        let error = read_certificates("sslrootcert", path).unwrap_err();
        assert!(error.contains("holds no PEM certificate"), "{error}");
        let error = read_private_key("keyfile", path).unwrap_err();
        assert!(error.contains("holds no usable PEM private key"), "{error}");
        std::fs::remove_file(empty).unwrap();
    }
}
