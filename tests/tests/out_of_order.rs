//! Events may arrive in any order: a cancellation seen first makes the event it cancels a
//! no-op; an order that times out after being charged is refunded.

use common::events::{
    CancellationReason, Event, InventoryReserved, LineItem, OrderCancelled, OrderCreated,
};
use common::money::Money;
use common::quantity::Quantity;
use saga_tests::provider_stub::{Fault, ProviderStub};
use saga_tests::{Service, TestStack, eventually};
use std::time::Duration;
use uuid::Uuid;

fn items() -> Vec<LineItem> {
    vec![LineItem {
        product_id: "product-A".into(),
        quantity: Quantity::try_from(2).unwrap(),
    }]
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

    let cancelled = OrderCancelled {
        order_id,
        customer_id: "c".into(),
        reason: CancellationReason::Timeout,
        items: items(),
    };
    let mut injected = vec![
        stack
            .broker
            .publish_event(Event::OrderCancelled(cancelled), Service::Order)
            .await,
    ];
    let created = OrderCreated {
        order_id,
        customer_id: "c".into(),
        items: items(),
        total_amount: Money::from_decimal(20.0).unwrap(),
    };
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
            .publish_event(Event::OrderCreated(created), Service::Order)
            .await,
    );
    let reserved = InventoryReserved {
        order_id,
        customer_id: "c".into(),
        items: items(),
        total_amount: Money::from_decimal(20.0).unwrap(),
    };
    injected.push(
        stack
            .broker
            .publish_event(Event::InventoryReserved(reserved), Service::Inventory)
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
    let injected: Vec<String> = injected.iter().map(|e| e.event_id.to_string()).collect();
    let caused: Vec<String> = stack
        .broker
        .events()
        .await
        .iter()
        .filter(|e| e.order_id() == order_id.to_string())
        .filter(|e| {
            !injected.contains(&e.json()["event_id"].as_str().unwrap_or_default().to_owned())
        })
        .map(|e| e.event_type())
        .collect();
    assert!(caused.is_empty(), "the late events caused {caused:?}");
    stack.cleanup().await;
}

#[tokio::test]
async fn an_order_that_times_out_after_payment_is_refunded() {
    // The provider takes longer over the charge than the saga may last: the order times
    // out while its charge is in flight, the charge then succeeds and must be refunded.
    let stub = ProviderStub::start().await;
    stub.set_faults(|request| {
        (request.try_of_key == 1).then_some(Fault::Slow(Duration::from_secs(5)))
    });
    let stack = TestStack::builder()
        .service_env(Service::Payment, "PAYMENT_PROVIDER_URL", &stub.url())
        .service_env(Service::Payment, "PAYMENT_PROVIDER_TIMEOUT_MS", "15000")
        .service_env(Service::Order, "SAGA_TIMEOUT_SECS", "2")
        .start()
        .await;

    let order = stack
        .place_order("customer-late", &[("product-A", 2)], 30.0)
        .await;
    let id = order["id"].as_str().unwrap();
    let done = stack.final_order(id).await;
    assert_eq!(done["status"], "CANCELLED");
    assert_eq!(done["cancellation_reason"], "TIMEOUT");
    assert_eq!(stub.in_progress(), 1, "the charge is no longer in flight");

    eventually("the refund", Duration::from_secs(20), || async {
        match stack.payment(id).await {
            Some(p) if p["status"] == "REFUNDED" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    stack.assert_invariants().await;
    assert_eq!(stack.stock().await["product-A"], (10, 0));
    let notifications = stack.notifications(id).await;
    assert!(
        notifications.contains(&"PaymentRefunded".to_owned()),
        "{notifications:?}"
    );
    assert_eq!(stack.broker.events_of("PaymentRefunded").await.len(), 1);
    assert_eq!(stack.order(id).await["status"], "CANCELLED");
    stub.assert_charged_once(&stack).await;
    stack.cleanup().await;
}
