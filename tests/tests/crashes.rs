//! SIGKILL any service mid-flow, start it again: nothing is lost, nothing happens twice.

use futures_util::future::join_all;
use saga_tests::{Service, TestStack, eventually};
use std::time::Duration;

/// Places orders, kills `victim` while they are in flight, restarts it, and checks that
/// every saga finishes with the invariants intact.
async fn kill_mid_flow(victim: Service) {
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "0.7")
        .env("PAYMENT_SEED", "11")
        .start()
        .await;
    stack.set_stock("product-A", 100).await;

    let orders = join_all((0..20).map(|n| {
        let stack = &stack;
        let items: &[(&str, i64)] = if n % 4 == 0 {
            &[("product-C", 1)]
        } else {
            &[("product-A", 2)]
        };
        async move { stack.place_order("c", items, 12.5).await }
    }))
    .await;
    stack.kill(victim).await;
    // More orders while it is down (order-service itself cannot take them then).
    let mut late = Vec::new();
    if victim != Service::Order {
        for _ in 0..3 {
            late.push(stack.place_order("c", &[("product-A", 1)], 1.0).await);
        }
    }
    stack.restart(victim, 1).await;

    for order in orders.iter().chain(&late) {
        stack.final_order(order["id"].as_str().unwrap()).await;
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn killing_order_service_mid_flow_loses_nothing() {
    kill_mid_flow(Service::Order).await;
}

#[tokio::test]
async fn killing_inventory_service_mid_flow_loses_nothing() {
    kill_mid_flow(Service::Inventory).await;
}

#[tokio::test]
async fn killing_payment_service_mid_flow_loses_nothing() {
    kill_mid_flow(Service::Payment).await;
}

#[tokio::test]
async fn killing_notification_service_mid_flow_loses_nothing() {
    kill_mid_flow(Service::Notification).await;
}

#[tokio::test]
async fn a_payment_interrupted_between_attempts_resumes_at_the_next_attempt() {
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "0")
        .service_env(Service::Payment, "PAYMENT_MAX_ATTEMPTS", "4")
        .service_env(Service::Payment, "PAYMENT_RETRY_BASE_MS", "400")
        .start()
        .await;
    let order = stack.place_order("c", &[("product-A", 1)], 7.0).await;
    let id = order["id"].as_str().unwrap().to_owned();

    let first = eventually(
        "a first declined attempt",
        Duration::from_secs(20),
        || async {
            match stack.payment(&id).await {
                Some(p) if p["status"] == "PENDING" && p["attempts"].as_u64() >= Some(1) => Ok(p),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    stack.kill(Service::Payment).await;
    stack.restart(Service::Payment, 1).await;

    let done = stack.final_order(&id).await;
    assert_eq!(done["cancellation_reason"], "PAYMENT_FAILED");
    let payment = stack.payment(&id).await.unwrap();
    assert_eq!(
        payment["payment_id"], first["payment_id"],
        "a second payment was started"
    );
    assert_eq!(payment["status"], "FAILED");
    assert_eq!(payment["attempts"], 4);
    let logs = stack.logs(Service::Payment);
    assert!(
        logs.contains("resuming an interrupted payment"),
        "the restart did not resume"
    );
    stack.assert_invariants().await;
    assert_eq!(stack.broker.events_of("PaymentFailed").await.len(), 1);
    stack.cleanup().await;
}
