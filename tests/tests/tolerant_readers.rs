//! Tolerant readers: every consumer of every event handles a "next version" of it — the
//! fields it knows plus fields it does not, at the top and inside its items — published
//! raw by the test with no optional metadata (no `causation_id`, `traceparent`, `type`,
//! `app_id` or `correlation_id`: only the body and its `message_id`). Each consumer's
//! effect shows; nothing is dead-lettered (the invariants check every dead-letter queue).

use lapin::BasicProperties;
use saga_tests::broker::Tapped;
use saga_tests::{Service, TestStack, contract, eventually};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// `fields` as a next version of the event might send them: a field the reader does not
/// know in every object.
fn next_version(fields: Value) -> Value {
    fn add(value: &mut Value) {
        match value {
            Value::Object(object) => {
                for inner in object.values_mut() {
                    add(inner);
                }
                object.insert("added_in_v2".into(), json!({"nested": [1, "two"]}));
            }
            Value::Array(items) => items.iter_mut().for_each(add),
            _ => {}
        }
    }
    let mut body = fields;
    add(&mut body);
    body
}

/// Publishes the next version of `event_type` with `fields`; returns its event id.
async fn publish_next(stack: &TestStack, event_type: &str, fields: Value) -> String {
    let event_id = Uuid::new_v4().to_string();
    let mut body = next_version(fields);
    body["event_id"] = event_id.clone().into();
    body["event_type"] = event_type.into();
    body["timestamp"] = chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        .into();
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(event_id.as_str().into());
    let routing_key = contract::event(event_type).routing_key;
    stack
        .broker
        .publish(routing_key, body.to_string().as_bytes(), properties)
        .await;
    event_id
}

fn causation_of(event: &Tapped) -> Option<String> {
    let headers = event.properties.headers().as_ref()?;
    match headers.inner().get("causation_id")? {
        lapin::types::AMQPValue::LongString(text) => Some(text.to_string()),
        _ => None,
    }
}

/// Waits for the `event_type` a service published for `order_id` because of `cause`.
async fn caused(stack: &TestStack, event_type: &str, order_id: &str, cause: &str) {
    eventually(
        &format!("{event_type} of {order_id} caused by {cause}"),
        Duration::from_secs(30),
        || async {
            let found = stack
                .broker
                .events_of(event_type)
                .await
                .into_iter()
                .any(|e| e.order_id() == order_id && causation_of(&e).as_deref() == Some(cause));
            found.then_some(()).ok_or_else(|| "not yet".to_owned())
        },
    )
    .await;
}

/// Waits until notification-service has told `order_id`'s customer of `event_type`.
async fn notified(stack: &TestStack, order_id: &str, event_type: &str) {
    eventually(
        &format!("the {event_type} notification of {order_id}"),
        Duration::from_secs(30),
        || async {
            let sent = stack.notifications(order_id).await;
            sent.iter()
                .any(|t| t == event_type)
                .then_some(())
                .ok_or_else(|| format!("{sent:?}"))
        },
    )
    .await;
}

fn items(product: &str) -> Value {
    json!([{"product_id": product, "quantity": 1}])
}

#[tokio::test]
async fn every_consumer_handles_a_next_version_of_every_event_it_consumes() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .start()
        .await;

    // order-service (and notification-service) read InventoryUnavailable, PaymentProcessed
    // and PaymentFailed: three orders wait PENDING while inventory-service is frozen, and
    // the next versions end them.
    stack.pause(Service::Inventory);
    let mut orders = Vec::new();
    for total in [10.0, 20.0, 30.0] {
        orders.push(
            stack
                .place_order("c-next", &[("product-A", 1)], total)
                .await,
        );
    }
    let ids: Vec<String> = orders
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    stack.await_queued(Service::Inventory, 3).await;
    let [short, paid, declined] = [&ids[0], &ids[1], &ids[2]];
    publish_next(
        &stack,
        "InventoryUnavailable",
        json!({"order_id": short, "reason": "Insufficient stock (product-A)",
               "items": [{"product_id": "product-A", "requested": 1, "available": 0}]}),
    )
    .await;
    publish_next(
        &stack,
        "PaymentProcessed",
        json!({"order_id": paid, "payment_id": Uuid::new_v4(), "amount": 20.0, "attempts": 1}),
    )
    .await;
    publish_next(
        &stack,
        "PaymentFailed",
        json!({"order_id": declined, "amount": 30.0, "reason": "Declined", "attempts": 3}),
    )
    .await;
    let ended = stack.final_orders(&orders).await;
    let endings: Vec<(&str, &str)> = ended
        .iter()
        .map(|o| {
            (
                o["status"].as_str().unwrap(),
                o["cancellation_reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        endings,
        [
            ("CANCELLED", "INVENTORY_UNAVAILABLE"),
            ("COMPLETED", ""),
            ("CANCELLED", "PAYMENT_FAILED")
        ]
    );
    notified(&stack, paid, "PaymentProcessed").await;
    notified(&stack, declined, "PaymentFailed").await;
    stack.resume(Service::Inventory);

    // inventory-service reads OrderCreated and reserves; payment-service charges on the
    // InventoryReserved it answers; then the next OrderCancelled makes inventory release,
    // payment refund and notification tell the customer. The order is the test's own,
    // unknown to order-service.
    let unknown = Uuid::new_v4().to_string();
    let created = publish_next(
        &stack,
        "OrderCreated",
        json!({"order_id": unknown, "customer_id": "c-next", "items": items("product-B"),
               "total_amount": 5.0}),
    )
    .await;
    caused(&stack, "InventoryReserved", &unknown, &created).await;
    eventually("the charge", Duration::from_secs(30), || async {
        match stack.payment(&unknown).await {
            Some(payment) if payment["status"] == "PROCESSED" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(stack.stock().await["product-B"].1, 1, "reserved");
    let cancelled = publish_next(
        &stack,
        "OrderCancelled",
        json!({"order_id": unknown, "customer_id": "c-next", "reason": "TIMEOUT",
               "items": items("product-B")}),
    )
    .await;
    caused(&stack, "PaymentRefunded", &unknown, &cancelled).await;
    caused(&stack, "InventoryReleased", &unknown, &cancelled).await;
    notified(&stack, &unknown, "OrderCancelled").await;
    eventually("the release", Duration::from_secs(30), || async {
        match stack.stock().await["product-B"] {
            (5, 0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // payment-service reads InventoryReserved.
    let charged = Uuid::new_v4().to_string();
    let reserved = publish_next(
        &stack,
        "InventoryReserved",
        json!({"order_id": charged, "customer_id": "c-next", "items": items("product-A"),
               "total_amount": 7.0}),
    )
    .await;
    caused(&stack, "PaymentProcessed", &charged, &reserved).await;

    // notification-service reads OrderConfirmed and PaymentRefunded.
    let told = Uuid::new_v4().to_string();
    publish_next(
        &stack,
        "OrderConfirmed",
        json!({"order_id": told, "customer_id": "c-next", "total_amount": 7.0}),
    )
    .await;
    publish_next(
        &stack,
        "PaymentRefunded",
        json!({"order_id": told, "payment_id": Uuid::new_v4(), "amount": 7.0}),
    )
    .await;
    notified(&stack, &told, "OrderConfirmed").await;
    notified(&stack, &told, "PaymentRefunded").await;

    // order-service reads InventoryReleased: noted in the order's timeline, status kept.
    publish_next(
        &stack,
        "InventoryReleased",
        json!({"order_id": paid, "items": items("product-A")}),
    )
    .await;
    eventually(
        "the release in the timeline",
        Duration::from_secs(30),
        || async {
            let timeline = stack.timeline(paid).await;
            timeline
                .iter()
                .any(|t| t == "InventoryReleased")
                .then_some(())
                .ok_or_else(|| format!("{timeline:?}"))
        },
    )
    .await;
    assert_eq!(stack.order(paid).await["status"], "COMPLETED");

    // No dead letter anywhere, and the saga's invariants hold for the three real orders.
    stack.assert_invariants().await;
    stack.cleanup().await;
}
