//! The broker lines of CONTRACT §4–§5 no flow test reaches: retries whose delays grow, the
//! error carried by a dead letter, no event dropped before its consumer starts, duplicates
//! that arrive together with the original.

use saga_tests::broker::Tapped;
use saga_tests::{Service, TestStack, contract, eventually};
use serde_json::{Value, json};
use std::time::Duration;

/// Delays that grow by far more than a busy machine stretches the handling between them.
const DELAYS_MS: [u64; 3] = [300, 900, 2700];

#[tokio::test]
async fn a_failing_message_is_retried_after_growing_delays_then_dead_lettered_with_its_error() {
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .service_env(
            Service::Notification,
            "RETRY_DELAYS_MS",
            &DELAYS_MS.map(|d| d.to_string()).join(","),
        )
        .start()
        .await;
    stack
        .refuse_inserts(Service::Notification, "notifications")
        .await;

    // One message only notification-service consumes, so every failure is this one's.
    let id = stack
        .broker
        .publish_event(
            "PaymentRefunded",
            json!({"order_id": uuid::Uuid::new_v4(), "payment_id": uuid::Uuid::new_v4(),
                   "amount": 5.0}),
        )
        .await;
    let dead_letters = contract::dead_letter_queue(&stack.name, Service::Notification);
    eventually("the dead letter", Duration::from_secs(60), || async {
        match stack.broker.ready(&dead_letters).await {
            Ok(1) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // When each failure happened, by the service's own clock: its log line for a failure
    // is written before the message goes to the delay queue, so consecutive lines are at
    // least the delay apart, exactly — no allowance for how fast this test could look.
    let failures = failure_times(&stack.logs(Service::Notification));
    assert_eq!(failures.len(), 4, "three retries and the dead letter");
    let gaps: Vec<Duration> = failures
        .windows(2)
        .map(|w| (w[1] - w[0]).to_std().expect("in order"))
        .collect();
    for (gap, delay) in gaps.iter().zip(DELAYS_MS) {
        assert!(
            *gap >= Duration::from_millis(delay),
            "retried after {gaps:?}, sooner than {DELAYS_MS:?}"
        );
    }
    assert!(
        gaps.windows(2).all(|w| w[1] > w[0]),
        "delays {gaps:?} do not grow"
    );

    // The dead letter is the very message, with the error in a header.
    let letters = stack.broker.peek(&dead_letters).await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(
        letter
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.to_string()),
        Some(id.clone())
    );
    let headers = letter.properties.headers().clone().unwrap_or_default();
    let carries_error = headers.inner().values().any(|value| {
        matches!(value, lapin::types::AMQPValue::LongString(text)
            if text.to_string().contains("injected failure"))
    });
    assert!(carries_error, "no header names the error: {headers:?}");
    stack
        .expected_dead_letters
        .insert(Service::Notification, vec![id]);
    stack.assert_invariants().await;
    stack.cleanup().await;
}

/// The timestamps of a service's log lines that report a failed handler, in order.
fn failure_times(log: &str) -> Vec<chrono::DateTime<chrono::Utc>> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| {
            entry["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("handler failed"))
        })
        .map(|entry| {
            entry["timestamp"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("a log line without a timestamp: {entry}"))
        })
        .collect()
}

#[tokio::test]
async fn events_published_before_their_consumers_start_are_not_dropped() {
    // Only order-service runs: it declares every queue, so its events wait for the rest.
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .only(&[Service::Order])
        .start()
        .await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 2.0).await);
    }
    orders.push(stack.place_order("c", &[("product-C", 1)], 2.0).await);
    stack.await_queued(Service::Inventory, 4).await;
    stack.assert_pending(&orders).await;

    for service in [Service::Inventory, Service::Payment, Service::Notification] {
        stack.restart(service, 1).await;
    }
    let ended = stack.final_orders(&orders).await;
    let statuses: Vec<&str> = ended
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["COMPLETED", "COMPLETED", "COMPLETED", "CANCELLED"]
    );
    stack.assert_invariants().await;
    stack.cleanup().await;
}

/// The same event with a fresh id, as a buggy publisher might send it.
fn with_new_id(event: &Tapped) -> Tapped {
    let mut body = event.json();
    let id = uuid::Uuid::new_v4().to_string();
    body["event_id"] = id.clone().into();
    Tapped {
        routing_key: event.routing_key.clone(),
        properties: event.properties.clone().with_message_id(id.into()),
        body: serde_json::to_vec(&body).unwrap(),
    }
}

/// Waits for the order's `event_type` on the bus and queues two more copies of it (one
/// with the same id, one with a new id) next to the original, for a frozen consumer.
async fn duplicate_while_queued(stack: &TestStack, order_id: &str, event_type: &str) {
    let event = eventually(
        &format!("{event_type} of {order_id}"),
        Duration::from_secs(30),
        || async {
            stack
                .broker
                .events_of(event_type)
                .await
                .into_iter()
                .find(|e| e.order_id() == order_id)
                .ok_or_else(|| "not yet".to_owned())
        },
    )
    .await;
    stack.broker.republish(&event).await;
    stack.broker.republish(&with_new_id(&event)).await;
}

#[tokio::test]
async fn duplicates_delivered_together_with_the_original_have_no_further_effect() {
    let stack = TestStack::start().await;
    for service in [Service::Inventory, Service::Payment, Service::Notification] {
        stack.pause(service);
    }
    let order = stack.place_order("c", &[("product-A", 3)], 9.0).await;
    let id = order["id"].as_str().unwrap();

    // Each consumer finds the original and two duplicates waiting together.
    duplicate_while_queued(&stack, id, "OrderCreated").await;
    stack.await_queued(Service::Inventory, 3).await;
    stack.resume(Service::Inventory);
    duplicate_while_queued(&stack, id, "InventoryReserved").await;
    stack.await_queued(Service::Payment, 3).await;
    stack.resume(Service::Payment);
    assert_eq!(stack.final_order(id).await["status"], "COMPLETED");
    duplicate_while_queued(&stack, id, "PaymentProcessed").await;
    duplicate_while_queued(&stack, id, "OrderConfirmed").await;
    stack.await_queued(Service::Notification, 6).await;
    stack.resume(Service::Notification);

    stack.assert_invariants().await;
    assert_eq!(stack.stock().await["product-A"], (7, 3));
    // Queued together, the two may be handled in either order; each once.
    let mut notified = stack.notifications(id).await;
    notified.sort();
    assert_eq!(notified, ["OrderConfirmed", "PaymentProcessed"]);
    let caused: Vec<String> = stack
        .broker
        .deliveries()
        .await
        .iter()
        .filter(|e| e.order_id() == id)
        .map(|e| e.event_type())
        .collect();
    let count = |t: &str| caused.iter().filter(|c| *c == t).count();
    // Published once by the services, plus the two copies the test sent.
    assert_eq!(count("InventoryReserved"), 3, "{caused:?}");
    assert_eq!(count("PaymentProcessed"), 3, "{caused:?}");
    assert_eq!(count("OrderConfirmed"), 3, "{caused:?}");
    let payment: Value = stack.payment(id).await.unwrap();
    assert_eq!(payment["attempts"], 1);
    stack.cleanup().await;
}
