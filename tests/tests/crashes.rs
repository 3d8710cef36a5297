//! SIGKILL any service mid-flow, start it again: nothing is lost, nothing happens twice.
//! The `…_mid_flow` kills land on work queued for a frozen process; the
//! `…_mid_transaction` ones on a process whose handler has a database transaction open
//! (held there by the test proxy, seen in `pg_stat_activity`), with orders posted
//! throughout.

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use saga_tests::api::order_body;
use saga_tests::load::Outcome;
use saga_tests::stack::Dependency;
use saga_tests::{Service, TestStack, eventually};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

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

/// Backends of `service`'s database that are inside a consumer's transaction: open,
/// waiting for the service's next statement (`idle in transaction`), and holding the inbox
/// table's lock — taken only by a handler batch's inbox claim, kept until its transaction
/// ends. Each as `(pid, xact_start)`, which names one transaction.
async fn handler_transactions(stack: &TestStack, service: Service) -> Vec<(i32, DateTime<Utc>)> {
    sqlx::query_as(
        "SELECT DISTINCT a.pid, a.xact_start
         FROM pg_stat_activity a
         JOIN pg_locks l ON l.pid = a.pid
         WHERE a.datname = current_database()
           AND a.pid <> pg_backend_pid()
           AND a.state = 'idle in transaction'
           AND a.xact_start IS NOT NULL
           AND l.locktype = 'relation'
           AND l.granted
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.relation = 'inbox'::regclass
         ORDER BY a.pid",
    )
    .fetch_all(&stack.db(service).await)
    .await
    .expect("pg_stat_activity can be read")
}

/// Holds `service`'s database link (the test proxy) at a moment when a handler's
/// transaction is open, and returns those transactions; each try that catches none is
/// released at once and tried again a moment later, with load running.
async fn hold_in_a_handler_transaction(
    stack: &TestStack,
    service: Service,
) -> Vec<(i32, DateTime<Utc>)> {
    let link = stack.proxy(service, Dependency::Database);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut tries = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "{tries} holds of {}'s database link caught no handler's transaction open",
            service.name()
        );
        tries += 1;
        link.hold();
        // What was on its way finishes; then each backend waits for the held statement.
        let settled = Instant::now() + Duration::from_millis(150);
        while Instant::now() < settled {
            let seen = handler_transactions(stack, service).await;
            if seen.is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            // A chunk the proxy had read just before the hold may still reach the server
            // (a COMMIT, say): only a transaction still open a moment later is held.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = handler_transactions(stack, service).await;
            let open: Vec<_> = seen.into_iter().filter(|t| now.contains(t)).collect();
            if !open.is_empty() {
                println!("{}: caught {open:?} at hold {tries}", service.name());
                return open;
            }
        }
        link.release();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Orders are posted throughout. `victim`'s database link is held while one of its
/// handlers has a transaction open (asserted in `pg_stat_activity`, and again after the
/// kill: the same transaction spanned it); SIGKILL; the link's end rolls the transaction
/// back; a fresh process takes the redelivered messages. Every accepted order ends, the
/// §6 invariants hold, and no order exists that no POST asked for.
async fn kill_mid_transaction(victim: Service) {
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "0.7")
        .env("PAYMENT_SEED", "11")
        .service_env(Service::Order, "MAX_PENDING_ORDERS", "100000")
        .service_env(Service::Order, "ADMISSION_TARGET_MS", "0")
        .through_proxy(victim, Dependency::Database)
        .start()
        .await;
    stack.set_stock("product-A", 100_000).await;
    let load = stack.post_orders_throughout(Duration::from_millis(40));
    load.await_more_accepted(10).await;

    let open = hold_in_a_handler_transaction(&stack, victim).await;
    stack.kill(victim).await;
    let after = handler_transactions(&stack, victim).await;
    for transaction in &open {
        assert!(
            after.contains(transaction),
            "{transaction:?} did not outlive the kill: {after:?}"
        );
    }
    // The link ends as a killed process's sockets do; the held statements never arrive.
    let link = stack.proxy(victim, Dependency::Database);
    link.cut();
    eventually(
        "the killed process's transactions to be rolled back",
        Duration::from_secs(30),
        || async {
            let now = handler_transactions(&stack, victim).await;
            match open.iter().filter(|t| now.contains(t)).count() {
                0 => Ok(()),
                n => Err(format!("{n} still open")),
            }
        },
    )
    .await;
    link.restore();
    stack.restart(victim, 1).await;
    load.retarget(&stack);
    load.await_more_accepted(10).await;
    let posted = load.stop().await;

    let accepted = saga_tests::load::accepted(&posted);
    let unanswered = posted
        .iter()
        .filter(|p| matches!(p.outcome, Outcome::Unanswered(_)))
        .count();
    println!("{}: {}", victim.name(), saga_tests::load::summary(&posted));
    let orders: Vec<Value> = accepted.iter().map(|id| json!({ "id": id })).collect();
    stack.final_orders(&orders).await;
    stack.assert_invariants().await;
    let written: BTreeSet<String> = stack
        .all_orders()
        .await
        .iter()
        .map(|o| o["id"].as_str().expect("an id").to_owned())
        .collect();
    for id in &accepted {
        assert!(written.contains(id), "accepted order {id} is missing");
    }
    if victim == Service::Order {
        // A POST cut off by the kill may or may not have been written; no other was.
        assert!(
            written.len() <= accepted.len() + unanswered,
            "{} orders for {} accepted and {unanswered} unanswered POSTs",
            written.len(),
            accepted.len()
        );
    } else {
        // order-service answered every POST, and created exactly what it accepted.
        assert_eq!(unanswered, 0, "{}", saga_tests::load::summary(&posted));
        assert_eq!(written.len(), accepted.len());
    }
    stack.cleanup().await;
}

#[tokio::test]
async fn killing_order_service_mid_transaction_loses_nothing() {
    kill_mid_transaction(Service::Order).await;
}

#[tokio::test]
async fn killing_inventory_service_mid_transaction_loses_nothing() {
    kill_mid_transaction(Service::Inventory).await;
}

#[tokio::test]
async fn killing_payment_service_mid_transaction_loses_nothing() {
    kill_mid_transaction(Service::Payment).await;
}

#[tokio::test]
async fn killing_notification_service_mid_transaction_loses_nothing() {
    kill_mid_transaction(Service::Notification).await;
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
