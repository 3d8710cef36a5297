//! Restarting the shared RabbitMQ and PostgreSQL servers loses nothing. These stop servers
//! every other test uses, so `.config/nextest.toml` runs this binary alone (and `cargo
//! test` runs test binaries one at a time); the servers are running again when it ends.

use reqwest::StatusCode;
use saga_tests::api::order_body;
use saga_tests::{TestStack, eventually};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .expect("the command runs");
    assert!(status.success(), "{program} {args:?} failed: {status}");
}

fn postgres_cluster() -> String {
    std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL installation")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .next()
        .expect("one PostgreSQL version")
}

/// Whatever happens in the test, both servers are running afterwards.
struct RestoreServers;

impl Drop for RestoreServers {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "start_app"])
            .status();
        let _ = Command::new("pg_ctlcluster")
            .args([
                "--skip-systemctl-redirect",
                &postgres_cluster(),
                "main",
                "start",
            ])
            .status();
    }
}

/// Places an order, retrying while order-service answers 503 (its database is restarting).
async fn place_with_retry(stack: &TestStack) -> Value {
    let body = order_body("c", &[("product-A", 1)], 4.0);
    eventually(
        "an order to be accepted",
        Duration::from_secs(60),
        || async {
            match stack.post_order_raw(&body).await {
                (StatusCode::CREATED, order) => Ok(order),
                (status, answer) => Err(format!("{status} {answer}")),
            }
        },
    )
    .await
}

#[tokio::test]
async fn sagas_survive_restarts_of_rabbitmq_and_postgresql() {
    let _restore = RestoreServers;
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .start()
        .await;
    stack.set_stock("product-A", 100).await;
    let mut orders = Vec::new();
    for _ in 0..5 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 4.0).await);
    }

    // RabbitMQ goes away with sagas in flight; orders keep being accepted meanwhile.
    run("rabbitmqctl", &["-q", "stop_app"]);
    for _ in 0..5 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 4.0).await);
    }
    run("rabbitmqctl", &["-q", "start_app"]);
    stack.all_ready().await;
    for order in &orders {
        assert_eq!(
            stack.final_order(order["id"].as_str().unwrap()).await["status"],
            "COMPLETED"
        );
    }
    stack.assert_invariants().await;

    // PostgreSQL restarts under every service at once.
    for _ in 0..5 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 4.0).await);
    }
    run(
        "pg_ctlcluster",
        &[
            "--skip-systemctl-redirect",
            &postgres_cluster(),
            "main",
            "restart",
        ],
    );
    for _ in 0..5 {
        orders.push(place_with_retry(&stack).await);
    }
    stack.all_ready().await;
    for order in &orders {
        assert_eq!(
            stack.final_order(order["id"].as_str().unwrap()).await["status"],
            "COMPLETED"
        );
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}
