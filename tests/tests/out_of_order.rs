//! Events may arrive in any order: a cancellation seen first makes the event it cancels a
//! no-op; an order that times out after being charged is refunded.

use saga_tests::provider_stub::{Fault, ProviderStub};
use saga_tests::saga_timeout::SAGA_TIMEOUT_SECS;
use saga_tests::{Service, TestStack, eventually};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

fn items() -> Value {
    json!([{"product_id": "product-A", "quantity": 2}])
}

#[tokio::test]
async fn a_cancellation_seen_first_stops_a_late_reservation_and_charge() {
    let stack = TestStack::start().await;
    let order_id = Uuid::new_v4();
    let consumed = |service| stack.metric_sum(service, "messages_consumed_total");
    let (inventory_before, payment_before) = (
        consumed(Service::Inventory).await,
        consumed(Service::Payment).await,
    );

    let mut injected = vec![
        stack
            .broker
            .publish_event(
                "OrderCancelled",
                json!({"order_id": order_id, "customer_id": "c", "reason": "TIMEOUT",
                       "items": items()}),
            )
            .await,
    ];
    // Services handle deliveries concurrently, so "seen first" means handled first.
    eventually(
        "the cancellation to be handled",
        Duration::from_secs(20),
        || async {
            let handled = consumed(Service::Inventory).await >= inventory_before + 1.0
                && consumed(Service::Payment).await >= payment_before + 1.0;
            if handled {
                Ok(())
            } else {
                Err("not yet".into())
            }
        },
    )
    .await;
    injected.push(
        stack
            .broker
            .publish_event(
                "OrderCreated",
                json!({"order_id": order_id, "customer_id": "c", "items": items(),
                       "total_amount": 20.0}),
            )
            .await,
    );
    injected.push(
        stack
            .broker
            .publish_event(
                "InventoryReserved",
                json!({"order_id": order_id, "customer_id": "c", "items": items(),
                       "total_amount": 20.0}),
            )
            .await,
    );

    // Consumed, and anything they caused is committed to an outbox and then confirmed
    // by RabbitMQ, so it would be in the tap.
    eventually(
        "the late events to be handled",
        Duration::from_secs(20),
        || async {
            let handled = consumed(Service::Inventory).await >= inventory_before + 2.0
                && consumed(Service::Payment).await >= payment_before + 2.0
                && stack.outbox_backlog(Service::Inventory).await == 0
                && stack.outbox_backlog(Service::Payment).await == 0;
            if handled {
                Ok(())
            } else {
                Err("not yet".into())
            }
        },
    )
    .await;
    assert_eq!(stack.stock().await["product-A"], (10, 0));
    assert_eq!(stack.payment(&order_id.to_string()).await, None);
    let caused: Vec<String> = stack
        .broker
        .deliveries()
        .await
        .iter()
        .filter(|e| e.order_id() == order_id.to_string())
        .filter(|e| {
            !injected.contains(&e.json()["event_id"].as_str().unwrap_or_default().to_owned())
        })
        .map(|e| e.event_type())
        .collect();
    assert!(caused.is_empty(), "the late events caused {caused:?}");
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn an_order_that_times_out_after_payment_is_refunded() {
    // The provider holds the charge until the order has timed out (the test triggers the
    // timeout while the charge is in flight); the charge then succeeds and must be refunded.
    let stub = ProviderStub::start().await;
    stub.set_faults(|request| (request.try_of_key == 1).then_some(Fault::HoldThenApply));
    let stack = TestStack::builder()
        .service_env(Service::Payment, "PAYMENT_PROVIDER_URL", &stub.url())
        .service_env(Service::Payment, "PAYMENT_PROVIDER_TIMEOUT_MS", "30000")
        .service_env(Service::Order, "SAGA_TIMEOUT_SECS", SAGA_TIMEOUT_SECS)
        .start()
        .await;

    let order = stack
        .place_order("customer-late", &[("product-A", 2)], 30.0)
        .await;
    let id = order["id"].as_str().unwrap();
    eventually(
        "the charge to be in flight",
        Duration::from_secs(30),
        || async {
            match stub.in_progress() {
                1 => Ok(()),
                n => Err(format!("{n} in flight")),
            }
        },
    )
    .await;
    stack.assert_pending(std::slice::from_ref(&order)).await;
    stack.expire(&[id.to_owned()]).await;
    let done = stack.final_order(id).await;
    assert_eq!(done["status"], "CANCELLED");
    assert_eq!(done["cancellation_reason"], "TIMEOUT");
    assert_eq!(stub.in_progress(), 1, "the charge is still in flight");
    stub.release();

    eventually("the refund", Duration::from_secs(20), || async {
        match stack.payment(id).await {
            Some(p) if p["status"] == "REFUNDED" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(stack.stock().await["product-A"], (10, 0));
    let notifications = stack.notifications(id).await;
    assert!(
        notifications.contains(&"PaymentRefunded".to_owned()),
        "{notifications:?}"
    );
    assert_eq!(stack.broker.events_of("PaymentRefunded").await.len(), 1);
    assert_eq!(stack.order(id).await["status"], "CANCELLED");
    stub.assert_charged_once(&stack).await;
    let types = stack.assert_event_metadata().await;
    assert!(types.contains("PaymentRefunded"), "{types:?}");
    stack.cleanup().await;
}
