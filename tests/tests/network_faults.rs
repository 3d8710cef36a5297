//! A proxy of the test's own between one service and PostgreSQL or RabbitMQ cuts or slows
//! that connection; the service notices, says so on /ready, and recovers by itself.

use reqwest::StatusCode;
use saga_tests::stack::Dependency;
use saga_tests::{Service, TestStack, eventually};
use serde_json::Value;
use std::time::Duration;

/// Waits until `/ready` answers `expected`; returns its body.
async fn wait_ready(stack: &TestStack, service: Service, expected: StatusCode) -> Value {
    eventually(
        &format!("{} /ready to answer {expected}", service.name()),
        Duration::from_secs(30),
        || async {
            let (status, body) = stack.get_json(service, "/ready").await;
            if status == expected {
                Ok(body)
            } else {
                Err(format!("{status} {body}"))
            }
        },
    )
    .await
}

/// A `/ready` 503 names what does not work.
fn assert_names(not_ready: &Value, dependency: &str) {
    let detail = not_ready["detail"].as_str().unwrap_or_default();
    assert!(
        detail.to_lowercase().contains(dependency),
        "/ready said {not_ready}, not naming {dependency}"
    );
}

#[tokio::test]
async fn orders_are_accepted_while_the_broker_is_cut_off_and_published_when_it_returns() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .through_proxy(Service::Order, Dependency::Broker)
        .start()
        .await;
    stack.proxy(Service::Order, Dependency::Broker).cut();
    let not_ready = wait_ready(&stack, Service::Order, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_names(&not_ready, "rabbitmq");

    let mut orders = Vec::new();
    for _ in 0..5 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 3.0).await);
    }
    assert_eq!(stack.outbox_backlog(Service::Order).await, 5);
    for order in &orders {
        assert_eq!(
            stack.order(order["id"].as_str().unwrap()).await["status"],
            "PENDING"
        );
    }

    stack.proxy(Service::Order, Dependency::Broker).restore();
    wait_ready(&stack, Service::Order, StatusCode::OK).await;
    for order in &orders {
        assert_eq!(
            stack.final_order(order["id"].as_str().unwrap()).await["status"],
            "COMPLETED"
        );
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_consumer_cut_off_from_its_database_holds_its_messages_until_it_returns() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .through_proxy(Service::Inventory, Dependency::Database)
        .start()
        .await;
    stack.proxy(Service::Inventory, Dependency::Database).cut();
    let not_ready = wait_ready(&stack, Service::Inventory, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_names(&not_ready, "database");

    let mut orders = Vec::new();
    for _ in 0..5 {
        orders.push(stack.place_order("c", &[("product-B", 1)], 3.0).await);
    }
    eventually(
        "inventory to try and wait",
        Duration::from_secs(20),
        || async {
            if stack
                .logs(Service::Inventory)
                .contains("holding the message")
            {
                Ok(())
            } else {
                Err("no".into())
            }
        },
    )
    .await;
    // While cut off, the orders wait for inventory and their messages stay queued for it.
    stack.await_queued(Service::Inventory, 5).await;
    stack.assert_pending(&orders).await;

    stack
        .proxy(Service::Inventory, Dependency::Database)
        .restore();
    wait_ready(&stack, Service::Inventory, StatusCode::OK).await;
    for order in &orders {
        assert_eq!(
            stack.final_order(order["id"].as_str().unwrap()).await["status"],
            "COMPLETED"
        );
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_consumer_cut_off_from_the_broker_mid_flow_reconnects_and_finishes() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .through_proxy(Service::Payment, Dependency::Broker)
        .start()
        .await;
    // Frozen, payment-service lets the reservations pile up on its link.
    stack.pause(Service::Payment);
    let mut orders = Vec::new();
    for _ in 0..10 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 3.0).await);
    }
    stack.await_queued(Service::Payment, 10).await;
    stack.assert_pending(&orders).await;
    stack.proxy(Service::Payment, Dependency::Broker).cut();
    stack.resume(Service::Payment);
    let not_ready = wait_ready(&stack, Service::Payment, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_names(&not_ready, "rabbitmq");
    // The cut returned the deliveries it held: they wait in its queue.
    stack.await_queued(Service::Payment, 10).await;
    stack.proxy(Service::Payment, Dependency::Broker).restore();

    for order in &orders {
        assert_eq!(
            stack.final_order(order["id"].as_str().unwrap()).await["status"],
            "COMPLETED"
        );
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn slow_links_to_the_database_and_the_broker_change_nothing_but_speed() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .through_proxy(Service::Payment, Dependency::Database)
        .through_proxy(Service::Inventory, Dependency::Broker)
        .start()
        .await;
    stack
        .proxy(Service::Payment, Dependency::Database)
        .set_delay(Duration::from_millis(20));
    stack
        .proxy(Service::Inventory, Dependency::Broker)
        .set_delay(Duration::from_millis(20));

    let mut orders = Vec::new();
    for _ in 0..8 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 3.0).await);
    }
    for order in &orders {
        assert_eq!(
            stack.final_order(order["id"].as_str().unwrap()).await["status"],
            "COMPLETED"
        );
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}
