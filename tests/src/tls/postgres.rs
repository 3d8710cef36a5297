//! A PostgreSQL 15 instance of the test's own that accepts only TLS over TCP: `initdb` into
//! a temp folder as the `postgres` user, `ssl=on` with the PKI's server certificate, its
//! own port and socket folder — the system's server is never changed. Stopped and removed
//! when dropped.

use super::pki::Pki;
use super::rabbit::{free_port, run};
use std::path::PathBuf;

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// The role the services log in as (password over TLS only); its password is one no log
/// may print.
pub const USER: &str = "saga_tls";
pub const PASSWORD: &str = "Tls-Database-Pa55word-SECRET";

pub struct TlsPostgres {
    pub port: u16,
    dir: PathBuf,
}

impl TlsPostgres {
    /// An instance presenting the PKI's `server.pem`.
    pub fn start(pki: &Pki) -> Self {
        Self::serving(pki, "server.pem")
    }

    /// An instance presenting the PKI's certificate `certfile` (for its `server.key`).
    pub fn serving(pki: &Pki, certfile: &str) -> Self {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let dir = std::env::temp_dir().join(format!("saga-pg-tls-{id}"));
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).unwrap();
        // The server reads its key only if the `postgres` user owns it, mode 0600.
        for (from, to) in [
            (certfile, "server.crt"),
            ("server.key", "server.key"),
            ("ca.pem", "ca.crt"),
        ] {
            std::fs::copy(pki.path(from), dir.join(to)).unwrap();
        }
        run("chmod", &["0600", dir.join("server.key").to_str().unwrap()]);
        run("chown", &["-R", "postgres:postgres", dir.to_str().unwrap()]);
        let port = free_port();
        let as_postgres = |args: &[&str]| {
            let mut all = vec!["-u", "postgres", "--"];
            all.extend_from_slice(args);
            run("runuser", &all)
        };
        let initdb = format!("{BIN}/initdb");
        as_postgres(&[
            initdb.as_str(),
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=reject",
            "-E",
            "UTF8",
        ]);
        let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        std::fs::write(
            data.join("postgresql.auto.conf"),
            format!(
                "listen_addresses = '127.0.0.1'\n\
                 port = {port}\n\
                 unix_socket_directories = '{socket}'\n\
                 ssl = on\n\
                 ssl_cert_file = '{cert}'\n\
                 ssl_key_file = '{key}'\n\
                 fsync = off\n\
                 max_connections = 100\n",
                socket = dir.to_str().unwrap(),
                cert = file("server.crt"),
                key = file("server.key"),
            ),
        )
        .unwrap();
        // TLS only over TCP: the test's superuser without a password, the services' role
        // with one; nothing without TLS.
        std::fs::write(
            data.join("pg_hba.conf"),
            format!(
                "local all all trust\n\
                 hostssl all postgres 127.0.0.1/32 trust\n\
                 hostssl all {USER} 127.0.0.1/32 scram-sha-256\n\
                 hostnossl all all 0.0.0.0/0 reject\n"
            ),
        )
        .unwrap();
        run("chown", &["-R", "postgres:postgres", dir.to_str().unwrap()]);
        let pg_ctl = format!("{BIN}/pg_ctl");
        let log = file("server.log");
        as_postgres(&[
            pg_ctl.as_str(),
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.as_str(),
            "-w",
            "-t",
            "120",
            "start",
        ]);
        let postgres = Self { port, dir };
        postgres.psql(&format!(
            "CREATE ROLE {USER} LOGIN CREATEDB PASSWORD '{PASSWORD}'"
        ));
        postgres
    }

    /// The server for the test's own connections (superuser, TLS without verification).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// The server as the services reach it: their role with its password.
    pub fn service_login(&self) -> String {
        format!("{USER}:{PASSWORD}")
    }

    fn psql(&self, sql: &str) {
        run(
            "runuser",
            &[
                "-u",
                "postgres",
                "--",
                "psql",
                "-h",
                self.dir.to_str().unwrap(),
                "-p",
                self.port.to_string().as_str(),
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        );
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{BIN}/pg_ctl"), "-D"])
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
