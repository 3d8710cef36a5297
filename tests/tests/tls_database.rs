//! TLS to PostgreSQL (`sslmode=verify-full&sslrootcert=…` in `DATABASE_URL`), against an
//! instance the test starts itself that accepts only TLS over TCP: every service runs the
//! saga over it, and a wrong root certificate stops a service at start, naming
//! `DATABASE_URL` without its password.

use saga_tests::TestStack;
use saga_tests::tls::pki::Pki;
use saga_tests::tls::postgres::{self, TlsPostgres};
use saga_tests::tls::{complete_orders, start_alone};
use std::time::Duration;

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
        Duration::from_secs(60),
    )
    .await;
    let message = refusal.message();
    println!("{message}");
    assert_eq!(refusal.status.code(), Some(2), "{}", refusal.output);
    assert!(
        message.starts_with("DATABASE_URL: the TLS connection to 127.0.0.1:"),
        "{message}"
    );
    assert!(
        message.contains("not signed by a CA this service trusts"),
        "{message}"
    );
    assert!(
        !refusal.output.contains(postgres::PASSWORD),
        "the password was printed: {}",
        refusal.output
    );

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
