//! TLS to PostgreSQL (`sslmode=verify-full&sslrootcert=…` in `DATABASE_URL`), against an
//! instance the test starts itself that accepts only TLS over TCP: every service runs the
//! saga over it, and a wrong root certificate, a certificate for another host and an
//! expired one each stop a service at start, naming `DATABASE_URL` without its password.
//! The last two are each of one check alone — the test's own connection with that check
//! left out (`verify-ca` skips the name, `require` everything) is let in — so a client
//! that skipped it would connect, the service would keep running, and the test would fail
//! on its deadline.

use saga_tests::TestStack;
use saga_tests::tls::pki::{OTHER_HOST, Pki};
use saga_tests::tls::postgres::{self, TlsPostgres};
use saga_tests::tls::{Refusal, complete_orders, rabbit, start_alone};
use sqlx::Connection;
use std::time::Duration;

/// Far more than a refusal takes, far less than "forever".
const REFUSAL_DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn every_service_runs_the_saga_over_verify_full_tls() {
    let pki = Pki::generate("db-saga");
    let server = TlsPostgres::start(&pki);
    let stack = TestStack::builder()
        .postgres(&server.admin_url())
        .database_user(&server.service_login())
        .database_params(&format!(
            "sslmode=verify-full&sslrootcert={}",
            pki.path("ca.pem")
        ))
        .env("PAYMENT_SUCCESS_RATE", "1")
        .start()
        .await;

    complete_orders(&stack, 3).await;

    // Each service's connections are TLS (the server refuses any other, so this shows
    // they are the services' and that they are there).
    let pool = stack.db(saga_tests::Service::Order).await;
    let databases: Vec<(String, bool)> = sqlx::query_as(
        "SELECT DISTINCT a.datname::text, s.ssl FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) WHERE a.usename = $1",
    )
    .bind(postgres::USER)
    .fetch_all(&pool)
    .await
    .unwrap();
    for service in saga_tests::Service::ALL {
        let name = format!("{}_{}", stack.name, service.short_name());
        assert!(
            databases.contains(&(name.clone(), true)),
            "no TLS connection to {name}: {databases:?}"
        );
    }
    assert!(databases.iter().all(|(_, ssl)| *ssl), "{databases:?}");
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_wrong_root_certificate_stops_a_service_at_start_without_its_password() {
    let pki = Pki::generate("db-refusal");
    let server = TlsPostgres::start(&pki);
    let url = |root: &str| {
        format!(
            "postgres://{}@127.0.0.1:{}/refused_db?sslmode=verify-full&sslrootcert={root}",
            server.service_login(),
            server.port
        )
    };
    let refusal = start_alone(
        "payment-service",
        &[("DATABASE_URL", url(&pki.path("other-ca.pem")))],
        REFUSAL_DEADLINE,
    )
    .await;
    let at = format!("127.0.0.1:{}", server.port);
    assert_refused(&refusal, &at, "not signed by a CA this service trusts");

    // A root certificate file that is not there is a configuration error: nothing is tried.
    let missing = start_alone(
        "payment-service",
        &[("DATABASE_URL", url("/nonexistent/root.pem"))],
        Duration::from_secs(30),
    )
    .await;
    println!("{}", missing.message());
    assert_eq!(missing.status.code(), Some(2), "{}", missing.output);
    assert!(
        missing.output.contains("DATABASE_URL"),
        "{}",
        missing.output
    );
    assert!(
        missing
            .output
            .contains("sslrootcert=/nonexistent/root.pem cannot be read"),
        "{}",
        missing.output
    );
    assert!(
        !missing.output.contains(postgres::PASSWORD),
        "{}",
        missing.output
    );
}

#[tokio::test]
async fn a_server_certificate_for_another_host_stops_a_service_at_start_under_verify_full() {
    // Issued by the CA the service trusts, valid now, for `other.example` only.
    let pki = Pki::generate("db-other-host");
    let server = TlsPostgres::serving(&pki, "other-host-server.pem");
    let ca = pki.path("ca.pem");

    // Checking the CA alone lets the test in: the name is all that is wrong.
    admin_connection(&server, &format!("sslmode=verify-ca&sslrootcert={ca}"))
        .await
        .expect("verify-ca accepts the certificate, whose CA is trusted");

    // By address (checked against the certificate's IP names) and by name (its DNS names).
    for host in ["127.0.0.1", "localhost"] {
        let refusal = refuse(
            &server,
            host,
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        )
        .await;
        assert_refused(
            &refusal,
            &format!("{host}:{}", server.port),
            "the server's certificate is not issued for the host name in the URL",
        );
        assert!(refusal.message().contains(OTHER_HOST), "{}", refusal.output);
    }
}

#[tokio::test]
async fn an_expired_server_certificate_stops_a_service_at_start() {
    // Issued by the CA the service trusts, for 127.0.0.1, valid in 2020 only.
    let pki = Pki::generate("db-expired");
    let server = TlsPostgres::serving(&pki, "expired-server.pem");
    let ca = pki.path("ca.pem");

    // Without verification the test gets in: the server is up, and speaks TLS.
    admin_connection(&server, "sslmode=require")
        .await
        .expect("sslmode=require does not look at the certificate");

    // verify-full, and verify-ca too: it skips the name, not the dates.
    for mode in ["verify-full", "verify-ca"] {
        let refusal = refuse(
            &server,
            "127.0.0.1",
            &format!("sslmode={mode}&sslrootcert={ca}"),
        )
        .await;
        let at = format!("127.0.0.1:{}", server.port);
        assert_refused(&refusal, &at, "the server's certificate has expired");
    }
}

/// The test's own superuser connection to `server`'s `postgres` database with these TLS
/// parameters.
async fn admin_connection(server: &TlsPostgres, params: &str) -> Result<(), sqlx::Error> {
    let url = format!("{}/postgres?{params}", server.admin_url());
    sqlx::PgConnection::connect(&url).await?.close().await
}

/// Starts inventory-service on `server` (reached as `host`, with these TLS parameters) and
/// waits for it to stop. Its broker is a port nothing answers at: a service that took the
/// database would wait there, without touching the shared node, until the deadline.
async fn refuse(server: &TlsPostgres, host: &str, params: &str) -> Refusal {
    let database_url = format!(
        "postgres://{}@{host}:{}/refused_db?{params}",
        server.service_login(),
        server.port
    );
    let amqp_url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", rabbit::free_port());
    start_alone(
        "inventory-service",
        &[("DATABASE_URL", database_url), ("AMQP_URL", amqp_url)],
        REFUSAL_DEADLINE,
    )
    .await
}

/// Exit code 2, `DATABASE_URL` and the TLS connection to `server` (`host:port`) named,
/// `expected` in the message, and no password anywhere.
fn assert_refused(refusal: &Refusal, server: &str, expected: &str) {
    let message = refusal.message();
    println!("{message}");
    assert_eq!(refusal.status.code(), Some(2), "{}", refusal.output);
    let named = format!("DATABASE_URL: the TLS connection to {server} failed: ");
    assert!(message.starts_with(&named), "{message}");
    assert!(message.contains(expected), "{message}");
    assert!(
        !refusal.output.contains(postgres::PASSWORD),
        "the password was printed: {}",
        refusal.output
    );
}
