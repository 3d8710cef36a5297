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
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// An `InventoryReserved` body as inventory-service publishes it (CONTRACT §4).
fn reserved(order_id: Uuid) -> Value {
    json!({"order_id": order_id, "customer_id": "c",
           "items": [{"product_id": "product-A", "quantity": 1}], "total_amount": 12.0})
}

/// An `OrderCancelled` body as order-service publishes it on a timeout.
fn cancelled(order_id: Uuid) -> Value {
    json!({"order_id": order_id, "customer_id": "c", "reason": "TIMEOUT",
           "items": [{"product_id": "product-A", "quantity": 1}]})
}

/// Sessions of payment-service's database waiting for a lock now (the holds' included).
async fn waiting_for_a_lock(stack: &TestStack) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(&stack.db(Service::Payment).await)
    .await
    .expect("pg_stat_activity can be read")
}

async fn await_waiting_for_a_lock(stack: &TestStack, count: i64) {
    eventually(
        &format!("{count} sessions waiting for a lock"),
        Duration::from_secs(30),
        || async {
            match waiting_for_a_lock(stack).await {
                found if found == count => Ok(()),
                found => Err(format!("{found} waiting")),
            }
        },
    )
    .await;
}

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

/// With `PAYMENT_SEED`, a first attempt numbers its order under a lock on the simulator's
/// rank table, held to the end of the batch. Batch B = [InventoryReserved(Y),
/// OrderCancelled(X)] holds that lock (Y's numbering held mid-statement) when batch A =
/// [InventoryReserved(X)] starts. Were A to write X's payment row before waiting for the
/// table, B would wait for that row (to cancel X) while A waits for B's table lock: a
/// deadlock PostgreSQL ends by failing one of them. A must wait before touching X's row.
///
/// B is made one batch by keeping both of the consumer's batch slots busy (two earlier
/// reservations, held the same way) while its two messages arrive.
#[tokio::test]
async fn a_seeded_batch_of_one_order_never_deadlocks_with_a_batch_of_several() {
    let stack = TestStack::builder()
        .service_env(Service::Payment, "PAYMENT_SUCCESS_RATE", "1")
        .service_env(Service::Payment, "PAYMENT_SEED", "11")
        .start()
        .await;
    let [p1, p2, x, y] = [(); 4].map(|_| Uuid::new_v4());
    // Every hold is in place before any batch: adding a trigger waits for open batches.
    let blockers = stack
        .hold_writes(
            Service::Payment,
            "simulator_orders",
            "INSERT",
            &format!("NEW.order_id IN ('{p1}', '{p2}')"),
        )
        .await;
    let numbering_y = stack
        .hold_writes(
            Service::Payment,
            "simulator_orders",
            "INSERT",
            &format!("NEW.order_id = '{y}'"),
        )
        .await;

    // Both batch slots busy: P1 held with the table lock, P2 waiting for it.
    stack
        .broker
        .publish_event("InventoryReserved", reserved(p1))
        .await;
    blockers.await_waiting(1).await;
    stack
        .broker
        .publish_event("InventoryReserved", reserved(p2))
        .await;
    await_waiting_for_a_lock(&stack, 2).await;
    stack
        .broker
        .publish_event("InventoryReserved", reserved(y))
        .await;
    stack
        .broker
        .publish_event("OrderCancelled", cancelled(x))
        .await;
    stack.await_unacked(Service::Payment, 4).await;
    // P1 and P2 go through; Y's and X's messages, waiting together, form batch B, which
    // takes the table lock and is held numbering Y.
    blockers.release().await;
    numbering_y.await_waiting(1).await;
    let batches = (
        stack
            .metric_sum(Service::Payment, "consumer_batch_size_count")
            .await,
        stack
            .metric_sum(Service::Payment, "consumer_batch_size_sum")
            .await,
    );
    assert_eq!(
        batches,
        (3.0, 4.0),
        "P1, P2 and B = [Y, X]: (batches, messages)"
    );

    // A: X's reservation alone, while B holds the table lock.
    stack
        .broker
        .publish_event("InventoryReserved", reserved(x))
        .await;
    await_waiting_for_a_lock(&stack, 2).await;
    numbering_y.release().await;

    eventually(
        "every message to be handled",
        Duration::from_secs(60),
        || async {
            let handled = stack
                .metric_sum(Service::Payment, "messages_consumed_total")
                .await;
            let settled = stack.outbox_backlog(Service::Payment).await == 0;
            if handled >= 5.0 && settled {
                Ok(())
            } else {
                Err(format!("{handled} handled"))
            }
        },
    )
    .await;
    let logs = stack.logs(Service::Payment);
    assert!(!logs.contains("deadlock"), "a batch deadlocked");
    assert!(!logs.contains("batch failed"), "a batch failed");
    // B cancelled X before A could charge it; P1, P2 and Y are paid, numbered 1, 2, 3.
    let db = stack.db(Service::Payment).await;
    let paid: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT order_id, status FROM payments ORDER BY status, order_id")
            .fetch_all(&db)
            .await
            .unwrap();
    let mut expected = vec![
        (p1, "PROCESSED".to_owned()),
        (p2, "PROCESSED".to_owned()),
        (y, "PROCESSED".to_owned()),
        (x, "VOID".to_owned()),
    ];
    expected.sort_by(|a, b| (&a.1, a.0).cmp(&(&b.1, b.0)));
    assert_eq!(paid, expected);
    let ranks: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT order_id, rank FROM simulator_orders ORDER BY rank")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(ranks, vec![(p1, 1), (p2, 2), (y, 3)]);
    stack.assert_invariants().await;
    stack.cleanup().await;
}
