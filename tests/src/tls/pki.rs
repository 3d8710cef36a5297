//! A test PKI made in the test: a CA, a second CA nobody should trust, a server certificate
//! for `localhost` and `127.0.0.1`, the same server with an expired certificate and with one
//! for another host only, a client certificate, and one the other CA signed — written as
//! PEM files into a folder of the test's.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// The PEM files of one test PKI.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// Makes every certificate into a fresh folder under the system's temp folder (readable
    /// by the servers' users, who run as `rabbitmq` and `postgres`).
    pub fn generate(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "saga-pki-{label}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&dir).expect("the PKI folder");
        let ca = CertificateAuthority::new("saga test CA");
        let other = CertificateAuthority::new("some other CA");
        ca.write(&dir, "ca");
        other.write(&dir, "other-ca");

        let server_key = KeyPair::generate().expect("a key");
        let server = leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        write(
            &dir,
            "server.pem",
            &server.signed_by(&server_key, &ca.issuer).unwrap().pem(),
        );
        write(&dir, "server.key", &server_key.serialize_pem());

        let mut expired = leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        expired.not_before = rcgen::date_time_ymd(2020, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let expired = expired.signed_by(&server_key, &ca.issuer).unwrap();
        write(&dir, "expired-server.pem", &expired.pem());

        // Valid, from the trusted CA, for the same key — but for a host the services never
        // connect to: only a client that checks the name refuses it.
        let other_host = leaf(&[OTHER_HOST], ExtendedKeyUsagePurpose::ServerAuth);
        let other_host = other_host.signed_by(&server_key, &ca.issuer).unwrap();
        write(&dir, "other-host-server.pem", &other_host.pem());

        let client_key = KeyPair::generate().expect("a key");
        let client = client_leaf();
        write(
            &dir,
            "client.pem",
            &client.signed_by(&client_key, &ca.issuer).unwrap().pem(),
        );
        write(&dir, "client.key", &client_key.serialize_pem());

        // The same client, signed by the CA the servers do not trust.
        let stranger_key = KeyPair::generate().expect("a key");
        let stranger = client_leaf();
        write(
            &dir,
            "other-ca-client.pem",
            &stranger
                .signed_by(&stranger_key, &other.issuer)
                .unwrap()
                .pem(),
        );
        write(&dir, "other-ca-client.key", &stranger_key.serialize_pem());
        Self { dir }
    }

    /// The path of one of the files (`ca.pem`, `other-ca.pem`, `server.pem`, `server.key`,
    /// `expired-server.pem`, `other-host-server.pem`, `client.pem`, `client.key`,
    /// `other-ca-client.pem`, `other-ca-client.key`).
    pub fn path(&self, file: &str) -> String {
        self.dir
            .join(file)
            .to_str()
            .expect("a UTF-8 path")
            .to_owned()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl CertificateAuthority {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("a key");
        let pem = params.self_signed(&key).expect("a CA certificate").pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    fn write(&self, dir: &Path, name: &str) {
        write(dir, &format!("{name}.pem"), &self.pem);
    }
}

/// The only name in `other-host-server.pem`.
pub const OTHER_HOST: &str = "other.example";

/// A client certificate for the user `saga`.
fn client_leaf() -> CertificateParams {
    let mut client = leaf(&[], ExtendedKeyUsagePurpose::ClientAuth);
    client.distinguished_name.push(DnType::CommonName, "saga");
    client
}

fn leaf(names: &[&str], usage: ExtendedKeyUsagePurpose) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("certificate parameters");
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params
}

fn write(dir: &Path, name: &str, pem: &str) {
    std::fs::write(dir.join(name), pem).expect("a PEM file");
}
