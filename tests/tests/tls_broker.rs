//! TLS to RabbitMQ (`amqps://` with `cacertfile`, `certfile`, `keyfile`), against a node of
//! the test's own whose only AMQP listener is TLS and which wants a client certificate: the
//! whole saga runs over it, and each certificate that cannot work stops a service at start
//! with a message naming `AMQP_URL`, never its password, and exit code 2 — never a hang.

use saga_tests::TestStack;
use saga_tests::tls::pki::Pki;
use saga_tests::tls::rabbit::{self, TlsRabbit};
use saga_tests::tls::{Refusal, complete_orders, start_alone};
use std::time::Duration;

/// Far more than a refusal takes (the database is prepared first), far less than "forever".
const REFUSAL_DEADLINE: Duration = Duration::from_secs(90);

#[tokio::test]
async fn the_whole_saga_runs_over_amqps_with_a_client_certificate() {
    let pki = Pki::generate("broker-saga");
    let node = TlsRabbit::start(&pki);
    let url = node.url(&format!(
        "cacertfile={}&certfile={}&keyfile={}",
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key")
    ));
    let mut stack = TestStack::builder()
        .amqp_url(&url)
        .env("PAYMENT_SUCCESS_RATE", "1")
        .start()
        .await;
    stack.rabbitmq_node = Some(node.node.clone());

    let ids = complete_orders(&stack, 3).await;
    assert_eq!(
        stack.timeline(&ids[0]).await,
        ["OrderCreated", "PaymentProcessed", "OrderConfirmed"]
    );

    // Every service's connection (named in its client properties) is TLS and presented
    // the client certificate.
    let connections = node.ctl(&[
        "list_connections",
        "client_properties",
        "ssl",
        "peer_cert_subject",
    ]);
    for service in [
        "order-service",
        "inventory-service",
        "payment-service",
        "notification-service",
    ] {
        let line = connections
            .lines()
            .find(|line| line.contains(service))
            .unwrap_or_else(|| panic!("no connection of {service}: {connections}"));
        assert!(line.contains("true"), "{service} is not on TLS: {line}");
        assert!(
            line.contains("CN=saga"),
            "{service} sent no client certificate: {line}"
        );
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn certificates_that_cannot_work_stop_a_service_at_start_naming_amqp_url() {
    let pki = Pki::generate("broker-refusals");
    let node = TlsRabbit::start(&pki);
    let database = format!(
        "t{}_tls_refusals",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let database_url = format!("{}/{database}", saga_tests::stack::postgres_url());
    let client = format!(
        "certfile={}&keyfile={}",
        pki.path("client.pem"),
        pki.path("client.key")
    );
    let refuse = |amqp_url: String| {
        let database_url = database_url.clone();
        async move {
            start_alone(
                "inventory-service",
                &[("DATABASE_URL", database_url), ("AMQP_URL", amqp_url)],
                REFUSAL_DEADLINE,
            )
            .await
        }
    };

    // A CA that did not issue the server's certificate.
    let wrong_ca =
        refuse(node.url(&format!("cacertfile={}&{client}", pki.path("other-ca.pem")))).await;
    assert_refused(&wrong_ca, "not signed by a CA this service trusts");

    // No client certificate, where the node demands one.
    let no_client_cert = refuse(node.url(&format!("cacertfile={}", pki.path("ca.pem")))).await;
    assert_refused(&no_client_cert, "wants a client certificate");

    // A plaintext client at the TLS port.
    let plaintext = format!(
        "amqp://{}:{}@127.0.0.1:{}/%2f",
        rabbit::USER,
        rabbit::PASSWORD,
        node.port
    );
    assert_refused(&refuse(plaintext).await, "this is a TLS port, use amqps://");

    // TLS at the shared node's plaintext port.
    let shared = saga_tests::proxy::target_of(&saga_tests::stack::amqp_url());
    let tls_at_plaintext = format!(
        "amqps://guest:guest@{shared}/%2f?cacertfile={}",
        pki.path("ca.pem")
    );
    assert_refused(&refuse(tls_at_plaintext).await, "did not answer in TLS");

    // The node's certificate expires: the node serves the expired one from its next
    // handshake on (Erlang's PEM cache cleared, as for a certificate rotation).
    std::fs::copy(pki.path("expired-server.pem"), pki.path("server.pem")).unwrap();
    node.ctl(&["eval", "ssl:clear_pem_cache()."]);
    let expired = refuse(node.url(&format!("cacertfile={}&{client}", pki.path("ca.pem")))).await;
    assert_refused(&expired, "the server's certificate has expired");

    drop_database(&database).await;
}

/// Exit code 2, `AMQP_URL` and `expected` in the message, and no password anywhere.
fn assert_refused(refusal: &Refusal, expected: &str) {
    let message = refusal.message();
    println!("{message}");
    assert_eq!(refusal.status.code(), Some(2), "{}", refusal.output);
    assert!(message.starts_with("AMQP_URL: "), "{message}");
    assert!(message.contains(expected), "{message}");
    assert!(
        !refusal.output.contains(rabbit::PASSWORD) && !refusal.output.contains("guest:guest"),
        "the password was printed: {}",
        refusal.output
    );
}

async fn drop_database(name: &str) {
    let pool = sqlx::PgPool::connect(&format!("{}/postgres", saga_tests::stack::postgres_url()))
        .await
        .expect("PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&pool)
    .await
    .expect("the database can be dropped");
}
