//! TLS to RabbitMQ (`amqps://` with `cacertfile`, `certfile`, `keyfile`), against a node of
//! the test's own whose only AMQP listener is TLS and which wants a client certificate: the
//! whole saga runs over it, and each certificate that cannot work stops a service at start
//! with a message naming `AMQP_URL`, never its password, and exit code 2 — never a hang.
//! The refusals are each of one check alone: a certificate from the trusted CA for another
//! host (the name check), a client certificate from another CA (the node's check), so a
//! side that skipped that check would connect, the service would keep running, and the
//! test would fail on its deadline.

use saga_tests::TestStack;
use saga_tests::tls::pki::{OTHER_HOST, Pki};
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
    let alone = Alone::new("refusals");
    let client = format!(
        "certfile={}&keyfile={}",
        pki.path("client.pem"),
        pki.path("client.key")
    );

    // A CA that did not issue the server's certificate.
    let wrong_ca = alone
        .refuse(node.url(&format!("cacertfile={}&{client}", pki.path("other-ca.pem"))))
        .await;
    assert_refused(&wrong_ca, "not signed by a CA this service trusts");

    // No client certificate, where the node demands one.
    let no_client_cert = alone
        .refuse(node.url(&format!("cacertfile={}", pki.path("ca.pem"))))
        .await;
    assert_refused(&no_client_cert, "wants a client certificate");

    // A plaintext client at the TLS port.
    let plaintext = format!(
        "amqp://{}:{}@127.0.0.1:{}/%2f",
        rabbit::USER,
        rabbit::PASSWORD,
        node.port
    );
    assert_refused(
        &alone.refuse(plaintext).await,
        "this is a TLS port, use amqps://",
    );

    // TLS at the shared node's plaintext port.
    let shared = saga_tests::proxy::target_of(&saga_tests::stack::amqp_url());
    let tls_at_plaintext = format!(
        "amqps://guest:guest@{shared}/%2f?cacertfile={}",
        pki.path("ca.pem")
    );
    assert_refused(
        &alone.refuse(tls_at_plaintext).await,
        "did not answer in TLS",
    );

    // The node's certificate expires: the node serves the expired one from its next
    // handshake on (Erlang's PEM cache cleared, as for a certificate rotation).
    std::fs::copy(pki.path("expired-server.pem"), pki.path("server.pem")).unwrap();
    node.ctl(&["eval", "ssl:clear_pem_cache()."]);
    let expired = alone
        .refuse(node.url(&format!("cacertfile={}&{client}", pki.path("ca.pem"))))
        .await;
    assert_refused(&expired, "the server's certificate has expired");
}

#[tokio::test]
async fn a_server_certificate_for_another_host_stops_a_service_at_start_naming_amqp_url() {
    // Issued by the CA the service trusts, valid now, for `other.example` only.
    let pki = Pki::generate("broker-other-host");
    let node = TlsRabbit::serving(&pki, "other-host-server.pem");
    let alone = Alone::new("other_host");
    let url = node.url(&format!(
        "cacertfile={}&certfile={}&keyfile={}",
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key")
    ));

    // By address (checked against the certificate's IP names) and by name (its DNS names):
    // a client that checked the CA alone would connect, and the service would run on.
    for url in [url.clone(), url.replace("@127.0.0.1:", "@localhost:")] {
        let refusal = alone.refuse(url).await;
        assert_refused(
            &refusal,
            "the server's certificate is not issued for the host name in the URL",
        );
        // rustls names what the certificate is for, which is what the operator must fix.
        assert!(refusal.message().contains(OTHER_HOST), "{}", refusal.output);
    }
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused_by_the_node_and_stops_a_service() {
    let pki = Pki::generate("broker-client-ca");
    let node = TlsRabbit::start(&pki);
    let alone = Alone::new("client_ca");
    let refusal = alone
        .refuse(node.url(&format!(
            "cacertfile={}&certfile={}&keyfile={}",
            pki.path("ca.pem"),
            pki.path("other-ca-client.pem"),
            pki.path("other-ca-client.key")
        )))
        .await;
    // The service trusted the node; the node did not trust the service's certificate, and
    // said why in its alert.
    assert_refused(&refusal, "it wants a client certificate it trusts");
    assert!(
        refusal.message().contains("UnknownCA"),
        "{}",
        refusal.output
    );

    // The node's side: it never let the service in, and logged the unknown CA.
    assert_eq!(node.ctl(&["list_connections", "name"]).trim(), "");
    saga_tests::eventually(
        "the node to log the client certificate it refused",
        Duration::from_secs(10),
        || async {
            let log = node.log();
            let refused = log.lines().any(|line| line.contains("Unknown CA"));
            refused.then_some(()).ok_or(log)
        },
    )
    .await;
}

/// A service started alone against a database of its own on the shared server (prepared
/// before the broker is tried), dropped with it.
struct Alone {
    database: String,
    database_url: String,
}

impl Alone {
    fn new(label: &str) -> Self {
        let database = format!(
            "t{}_tls_{label}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        let database_url = format!("{}/{database}", saga_tests::stack::postgres_url());
        Self {
            database,
            database_url,
        }
    }

    /// Starts inventory-service on `amqp_url` and waits for it to stop.
    async fn refuse(&self, amqp_url: String) -> Refusal {
        start_alone(
            "inventory-service",
            &[
                ("DATABASE_URL", self.database_url.clone()),
                ("AMQP_URL", amqp_url),
            ],
            REFUSAL_DEADLINE,
        )
        .await
    }
}

impl Drop for Alone {
    /// Drops the database even when the test failed (the service is no longer running, and
    /// `FORCE` ends any session it left); after a test that passed, it must work.
    fn drop(&mut self) {
        let dropped = std::process::Command::new("psql")
            .arg(format!("{}/postgres", saga_tests::stack::postgres_url()))
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.database
            ))
            .output()
            .expect("psql runs");
        if !std::thread::panicking() {
            assert!(dropped.status.success(), "{dropped:?}");
        }
    }
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
