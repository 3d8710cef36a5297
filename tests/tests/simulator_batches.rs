//! The built-in simulator answers an order's first attempt inside payment-service's
//! consumer batch (issue 31, item 4): what it says about that answer — the call counted in
//! `payment_provider_requests_total`, the line "payment processed" — must wait for the
//! batch to commit; and with `PAYMENT_SEED` the lock it takes on its rank table must never
//! close a cycle with another batch.
//!
//! Each scene is set by holding a write mid-statement ([`TestStack::hold_writes`]) and by
//! waiting for the sessions that wait on a lock: nothing races a clock. The events are
//! published by the test (orders order-service never saw, which every other service takes
//! as the no-ops they are for it) where the scene needs batches of its own making.

use saga_tests::{Service, TestStack, eventually};
use std::time::Duration;

/// A batch that rolls back after the simulator answered (its session ends while its
/// `PaymentProcessed` waits to enter the outbox) has charged nothing — the ledger rolls
/// back with it — so it must not have counted the call or said "payment processed"; the
/// redelivery that charges counts and says it once.
#[tokio::test]
async fn a_batch_that_rolls_back_neither_counts_nor_logs_its_charge() {
    let stack = TestStack::builder()
        .service_env(Service::Payment, "PAYMENT_SUCCESS_RATE", "1")
        .start()
        .await;
    let outbox = stack
        .hold_writes(
            Service::Payment,
            "outbox",
            "INSERT",
            "NEW.event_type = 'PaymentProcessed'",
        )
        .await;
    let order = stack.place_order("c", &[("product-A", 1)], 8.0).await;
    let id = order["id"].as_str().unwrap().to_owned();
    outbox.await_waiting(1).await;
    let counted = || stack.metric_sum(Service::Payment, "payment_provider_requests_total");
    let said = || {
        stack
            .logs(Service::Payment)
            .matches("payment processed")
            .count()
    };
    assert_eq!(
        counted().await,
        0.0,
        "the call was counted before its commit"
    );
    assert_eq!(said(), 0, "the charge was logged before its commit");
    assert_eq!(outbox.fail_waiting().await, 1);
    outbox.release().await;

    assert_eq!(stack.final_order(&id).await["status"], "COMPLETED");
    eventually("an empty outbox", Duration::from_secs(30), || async {
        match stack.outbox_backlog(Service::Payment).await {
            0 => Ok(()),
            left => Err(format!("{left} events in the outbox")),
        }
    })
    .await;
    let charges: i64 = sqlx::query_scalar("SELECT count(*) FROM simulator_charges")
        .fetch_one(&stack.db(Service::Payment).await)
        .await
        .unwrap();
    assert_eq!(
        charges, 1,
        "the rolled-back charge left a trace in the ledger"
    );
    assert_eq!(counted().await, 1.0, "provider calls counted");
    assert_eq!(said(), 1, "\"payment processed\" lines");
    stack.assert_invariants().await;
    stack.cleanup().await;
}
