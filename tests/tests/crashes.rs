//! SIGKILL any service mid-flow, start it again: nothing is lost, nothing happens twice.

use futures_util::future::join_all;
use saga_tests::api::order_body;
use saga_tests::{Service, TestStack, eventually};
use serde_json::Value;
use std::time::Duration;

/// Orders, one in four for product C (cancelled as unavailable), the rest for product A.
async fn place_orders(stack: &TestStack, count: usize) -> Vec<Value> {
    join_all((0..count).map(|n| {
        let items: &[(&str, i64)] = if n % 4 == 0 {
            &[("product-C", 1)]
        } else {
            &[("product-A", 2)]
        };
        stack.place_order("c", items, 12.5)
    }))
    .await
}

/// Messages the victim's queue receives for `orders` placed as [`place_orders`] does,
/// once everything before the victim has handled them.
fn messages_for(victim: Service, orders: usize) -> u64 {
    let unavailable = orders.div_ceil(4) as u64;
    let available = orders as u64 - unavailable;
    match victim {
        // One outcome per order: InventoryUnavailable, PaymentProcessed or PaymentFailed.
        Service::Order => orders as u64,
        // One OrderCreated per order.
        Service::Inventory => orders as u64,
        // InventoryReserved per available order, OrderCancelled per unavailable one.
        Service::Payment => orders as u64,
        // The payment outcome and the final event of each available order, the
        // cancellation of each unavailable one.
        Service::Notification => 2 * available + unavailable,
    }
}

/// Freezes `victim`, lets orders pile up work for it, asserts that work is queued for it
/// and the orders it blocks are `PENDING`, SIGKILLs it, places more orders while it is
/// down, restarts it, and checks that every saga finishes with the invariants intact.
async fn kill_mid_flow(victim: Service) {
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "0.7")
        .env("PAYMENT_SEED", "11")
        .start()
        .await;
    stack.set_stock("product-A", 100).await;

    let orders = if victim == Service::Order {
        // Hold the orders at inventory until every OrderCreated is out, so the outcomes
        // all reach order-service's queue after it is frozen.
        stack.pause(Service::Inventory);
        let orders = place_orders(&stack, 20).await;
        stack.await_queued(Service::Inventory, 20).await;
        stack.assert_pending(&orders).await;
        stack.pause(Service::Order);
        stack.resume(Service::Inventory);
        orders
    } else {
        stack.pause(victim);
        place_orders(&stack, 20).await
    };

    // The strike lands on work in flight: every message the victim has to handle is
    // still queued for it, and no order it blocks has ended.
    stack.await_queued(victim, messages_for(victim, 20)).await;
    match victim {
        Service::Inventory => stack.assert_pending(&orders).await,
        Service::Payment => {
            let reserved: Vec<Value> = orders
                .iter()
                .filter(|o| o["items"][0]["product_id"] == "product-A")
                .cloned()
                .collect();
            stack.assert_pending(&reserved).await
        }
        // Frozen order-service cannot answer; it was checked before it froze and has
        // consumed nothing since (all 20 outcomes are queued for it).
        _ => {}
    }
    // Orders sent to a frozen order-service wait in its socket when it dies.
    let stranded: Vec<_> = (0..3)
        .filter(|_| victim == Service::Order)
        .map(|_| {
            let request = stack
                .http
                .post(stack.url(Service::Order, "/api/orders"))
                .json(&order_body("c", &[("product-A", 1)], 1.0));
            tokio::spawn(request.send())
        })
        .collect();
    if victim == Service::Order {
        // They reached the server: their bytes wait unread in its sockets.
        eventually(
            "the three POSTs to wait in order-service's sockets",
            Duration::from_secs(20),
            || async {
                match stack.requests_unread_by(Service::Order) {
                    3 => Ok(()),
                    n => Err(format!("{n} connections with unread requests")),
                }
            },
        )
        .await;
    }
    stack.kill(victim).await;
    for answer in join_all(stranded).await {
        let answer = answer.expect("the request task ends");
        assert!(
            answer.is_err(),
            "a killed order-service answered {answer:?}"
        );
    }

    // More orders while it is down (order-service itself cannot take them then).
    let mut late = Vec::new();
    if victim != Service::Order {
        for _ in 0..3 {
            late.push(stack.place_order("c", &[("product-A", 1)], 1.0).await);
        }
    }
    stack.restart(victim, 1).await;

    stack.final_orders(&orders).await;
    stack.final_orders(&late).await;
    stack.assert_invariants().await;
    // An order whose POST got no answer was never written afterwards.
    assert_eq!(stack.all_orders().await.len(), orders.len() + late.len());
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
                Some(p) if in_progress(&p) && p["attempts"].as_u64() >= Some(1) => Ok(p),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    // The strike lands between attempts: the order waits and the payment is unfinished.
    stack.assert_pending(std::slice::from_ref(&order)).await;
    let now = stack.payment(&id).await.expect("the payment");
    assert!(
        in_progress(&now) && now["attempts"].as_u64() < Some(4),
        "{now}"
    );
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

/// A payment that is none of the contract's final states (PROCESSED, FAILED, REFUNDED).
fn in_progress(payment: &Value) -> bool {
    !matches!(
        payment["status"].as_str(),
        Some("PROCESSED" | "FAILED" | "REFUNDED")
    )
}
