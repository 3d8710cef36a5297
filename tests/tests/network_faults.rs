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

/// After a 30 s outage with 1,000 events waiting in the outbox, the relay works through
/// the backlog while new orders keep coming and go out right after their commit: the rows
/// those were confirmed for are deleted as the relay goes (issue 21), so each event goes out
/// at most twice, and almost every one once (counted at the test's tap by `event_id`).
#[tokio::test]
async fn a_backlog_after_a_long_outage_goes_out_once_per_event() {
    const WAITING: usize = 1_000;
    const DURING_RECOVERY: usize = 200;
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .service_env(Service::Order, "MAX_PENDING_ORDERS", "100000")
        .through_proxy(Service::Order, Dependency::Broker)
        .start()
        .await;
    stack.set_stock("product-A", 10_000).await;
    stack.proxy(Service::Order, Dependency::Broker).cut();
    let outage = std::time::Instant::now();
    let body = saga_tests::api::order_body("c", &[("product-A", 1)], 3.0);
    let mut ids = Vec::new();
    for chunk in 0..WAITING / 50 {
        let posts = (0..50).map(|_| stack.post_order_raw(&body));
        for (status, order) in futures_util::future::join_all(posts).await {
            assert_eq!(status, StatusCode::CREATED, "chunk {chunk}: {order}");
            ids.push(order["id"].as_str().unwrap().to_owned());
        }
    }
    // The strike holds work in flight: every OrderCreated waits in the outbox.
    assert_eq!(stack.outbox_backlog(Service::Order).await, WAITING as i64);
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(outage.elapsed())).await;

    stack.proxy(Service::Order, Dependency::Broker).restore();
    for _ in 0..DURING_RECOVERY / 20 {
        let posts = (0..20).map(|_| stack.post_order_raw(&body));
        for (status, order) in futures_util::future::join_all(posts).await {
            assert_eq!(status, StatusCode::CREATED, "{order}");
            ids.push(order["id"].as_str().unwrap().to_owned());
        }
    }
    for id in &ids {
        assert_eq!(stack.final_order(id).await["status"], "COMPLETED", "{id}");
    }

    let mut sent: std::collections::HashMap<String, usize> = Default::default();
    for event in stack.broker.events_of("OrderCreated").await {
        *sent
            .entry(event.json()["event_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(sent.len(), ids.len(), "every OrderCreated went out");
    let twice = sent.values().filter(|n| **n == 2).count();
    assert!(
        sent.values().all(|n| *n <= 2),
        "an event went out more than twice"
    );
    assert!(
        twice * 20 <= sent.len(),
        "{twice} of {} events went out twice",
        sent.len()
    );
    stack.assert_invariants().await;
    stack.cleanup().await;
}
