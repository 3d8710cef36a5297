//! Several replicas of every service share the queues, the outbox and the timeout sweep
//! and stay correct.

use futures_util::future::join_all;
use saga_tests::{Service, TestStack};
use std::collections::HashMap;

fn two_of_everything() -> saga_tests::stack::StackBuilder {
    Service::ALL
        .into_iter()
        .fold(TestStack::builder(), |builder, service| {
            builder.replicas(service, 2)
        })
}

#[tokio::test]
async fn two_replicas_of_every_service_handle_fifty_concurrent_orders() {
    let mut stack = two_of_everything()
        .env("PAYMENT_SUCCESS_RATE", "0.8")
        .env("PAYMENT_SEED", "5")
        .start()
        .await;
    stack.set_stock("product-A", 30).await;

    let orders = join_all((0..50).map(|n| {
        let stack = &stack;
        let items: &[(&str, i64)] = match n % 5 {
            0 => &[("product-B", 1)],
            1 => &[("product-A", 1), ("product-B", 1)],
            2 => &[("product-C", 1)],
            _ => &[("product-A", 1)],
        };
        async move {
            stack
                .place_order(&format!("customer-{n}"), items, 20.0)
                .await
        }
    }))
    .await;
    for order in &orders {
        stack.final_order(order["id"].as_str().unwrap()).await;
    }
    stack.assert_invariants().await;

    // Each saga's events were published once, whichever replica's relay sent them.
    let mut per_order: HashMap<(String, String), usize> = HashMap::new();
    for event in stack.broker.deliveries().await {
        *per_order
            .entry((event.order_id(), event.event_type()))
            .or_default() += 1;
    }
    assert!(per_order.values().all(|&n| n == 1), "{per_order:?}");
    stack.cleanup().await;
}

#[tokio::test]
async fn two_timeout_sweepers_cancel_each_stuck_order_once() {
    let stack = two_of_everything()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .service_env(Service::Order, "SAGA_TIMEOUT_SECS", "1")
        .start()
        .await;
    stack.pause(Service::Payment);

    let orders = join_all((0..10).map(|_| stack.place_order("c", &[("product-A", 1)], 2.0))).await;
    for order in &orders {
        let done = stack.final_order(order["id"].as_str().unwrap()).await;
        assert_eq!(done["cancellation_reason"], "TIMEOUT");
    }
    stack.resume(Service::Payment);
    stack.assert_invariants().await;
    assert_eq!(stack.broker.events_of("OrderCancelled").await.len(), 10);
    stack.cleanup().await;
}
