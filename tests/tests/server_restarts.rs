//! Restarting the shared RabbitMQ and PostgreSQL servers loses nothing. These stop servers
//! every other test uses, so `.config/nextest.toml` runs this binary alone. Plain `cargo
//! test` runs test binaries one at a time but a binary's tests in parallel, so the two
//! tests here also take turns on [`SHARED_SERVERS`]: neither stops a server under the
//! other. The servers are running again when each ends.

use reqwest::StatusCode;
use saga_tests::api::order_body;
use saga_tests::{Service, TestStack, contract, eventually};
use serde_json::Value;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Held for the whole of a test that stops a shared server.
static SHARED_SERVERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

/// Places an order, retrying while order-service answers 503 (its database is down or
/// restarting); counts the refusals in `refused`.
async fn place_counting_refusals(stack: &TestStack, refused: &AtomicUsize) -> Value {
    let body = order_body("c", &[("product-A", 1)], 4.0);
    eventually(
        "an order to be accepted",
        Duration::from_secs(60),
        || async {
            match stack.post_order_raw(&body).await {
                (StatusCode::CREATED, order) => Ok(order),
                (status, answer) => {
                    assert!(status.is_server_error(), "{status} {answer}");
                    assert!(answer["detail"].is_string(), "{status} {answer}");
                    refused.fetch_add(1, Ordering::SeqCst);
                    Err(format!("{status} {answer}"))
                }
            }
        },
    )
    .await
}

async fn place_with_retry(stack: &TestStack) -> Value {
    place_counting_refusals(stack, &AtomicUsize::new(0)).await
}

fn postgres(action: &str) {
    run(
        "pg_ctlcluster",
        &[
            "--skip-systemctl-redirect",
            &postgres_cluster(),
            "main",
            action,
        ],
    );
}

/// Freezes payment-service and places `count` orders: they wait, PENDING, with their
/// reservations queued for it.
async fn orders_held_at_payment(stack: &TestStack, count: usize) -> Vec<Value> {
    stack.pause(Service::Payment);
    let mut orders = Vec::new();
    for _ in 0..count {
        orders.push(stack.place_order("c", &[("product-A", 1)], 4.0).await);
    }
    stack.await_queued(Service::Payment, count as u64).await;
    stack.assert_pending(&orders).await;
    orders
}

#[tokio::test]
async fn sagas_and_dead_letters_survive_a_rabbitmq_restart() {
    // Dropped last: the other test waits until the servers are restored.
    let _turn = SHARED_SERVERS.lock().await;
    let _restore = RestoreServers;
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .start()
        .await;
    stack.set_stock("product-A", 100).await;
    let poison = stack
        .broker
        .publish_poison("payment.refunded", b"not an event")
        .await;
    stack
        .expected_dead_letters
        .insert(Service::Notification, vec![poison.clone()]);
    let dead_letters = contract::dead_letter_queue(&stack.name, Service::Notification);
    eventually(
        "the poison to be dead-lettered",
        Duration::from_secs(30),
        || async {
            match stack.broker.ready(&dead_letters).await {
                Ok(1) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    // RabbitMQ goes away with sagas in flight; orders keep being accepted meanwhile.
    let mut orders = orders_held_at_payment(&stack, 5).await;
    run("rabbitmqctl", &["-q", "stop_app"]);
    for _ in 0..5 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 4.0).await);
    }
    assert!(stack.outbox_backlog(Service::Order).await > 0);
    run("rabbitmqctl", &["-q", "start_app"]);
    stack.resume(Service::Payment);
    stack.all_ready().await;
    for order in stack.final_orders(&orders).await {
        assert_eq!(order["status"], "COMPLETED", "{order}");
    }
    // The dead letter is still there, the very message put there.
    let letters = stack.broker.peek(&dead_letters).await.unwrap();
    let ids: Vec<String> = letters
        .iter()
        .filter_map(|l| l.properties.message_id().as_ref().map(|m| m.to_string()))
        .collect();
    assert_eq!(ids, [poison]);
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn sagas_survive_a_postgresql_restart_and_orders_sent_while_it_is_down() {
    // Dropped last: the other test waits until the servers are restored.
    let _turn = SHARED_SERVERS.lock().await;
    let _restore = RestoreServers;
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .start()
        .await;
    stack.set_stock("product-A", 100).await;

    // PostgreSQL restarts under every service at once, with sagas in flight.
    let mut orders = orders_held_at_payment(&stack, 5).await;
    postgres("restart");
    stack.resume(Service::Payment);
    for _ in 0..5 {
        orders.push(place_with_retry(&stack).await);
    }

    for order in stack.final_orders(&orders).await {
        assert_eq!(order["status"], "COMPLETED", "{order}");
    }

    // PostgreSQL stays down while payment-service has work and clients send orders.
    orders.extend(orders_held_at_payment(&stack, 3).await);
    postgres("stop");
    stack.resume(Service::Payment);
    let refused = AtomicUsize::new(0);
    let sent_while_down = (0..3).map(|_| place_counting_refusals(&stack, &refused));
    let ((), late) = tokio::join!(
        async {
            // Every client meets the dead database before it returns.
            eventually("three refused orders", Duration::from_secs(30), || async {
                match refused.load(Ordering::SeqCst) {
                    n if n >= 3 => Ok(()),
                    n => Err(format!("{n} refused")),
                }
            })
            .await;
            postgres("start");
        },
        futures_util::future::join_all(sent_while_down)
    );
    orders.extend(late);
    stack.all_ready().await;
    for order in stack.final_orders(&orders).await {
        assert_eq!(order["status"], "COMPLETED", "{order}");
    }
    stack.assert_invariants().await;
    assert_eq!(stack.all_orders().await.len(), orders.len());
    stack.cleanup().await;
}
