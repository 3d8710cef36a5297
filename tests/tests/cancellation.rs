//! Cancelling an order (CONTRACT §15): a customer's or an operator's cancel racing the
//! saga that runs. Each race is made deterministic by holding one step — a paused consumer,
//! a charge held at the provider stub, a cut broker link — never by sleeping; each test
//! ends with the §6 checker (and, with the provider stub, its ledger).

use futures_util::future::join_all;
use reqwest::StatusCode;
use saga_tests::provider_stub::{Fault, Kind, ProviderStub};
use saga_tests::saga_timeout::SAGA_TIMEOUT_SECS;
use saga_tests::stack::{Dependency, StackBuilder};
use saga_tests::{Service, TestStack, eventually};
use serde_json::{Value, json};
use std::time::Duration;

fn id_of(order: &Value) -> String {
    order["id"].as_str().unwrap().to_owned()
}

/// A stack whose payment-service charges through `stub`.
fn with_provider(stub: &ProviderStub) -> StackBuilder {
    TestStack::builder()
        .service_env(Service::Payment, "PAYMENT_PROVIDER_URL", &stub.url())
        .service_env(Service::Payment, "PAYMENT_PROVIDER_TIMEOUT_MS", "2000")
}

/// The distinct events (by `event_id`; a relay's resend is the same event) of `event_type`
/// for `order` that crossed the exchange.
async fn published(stack: &TestStack, event_type: &str, order: &str) -> usize {
    let ids: std::collections::HashSet<String> = stack
        .broker
        .deliveries()
        .await
        .iter()
        .filter(|e| e.event_type() == event_type && e.order_id() == order)
        .map(|e| e.json()["event_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.len()
}

/// Waits until `event_type` of `order` has crossed the exchange.
async fn await_published(stack: &TestStack, event_type: &str, order: &str) {
    eventually(
        &format!("{event_type} of {order} on the bus"),
        Duration::from_secs(30),
        || async {
            match published(stack, event_type, order).await {
                0 => Err("not yet".to_owned()),
                _ => Ok(()),
            }
        },
    )
    .await
}

/// Waits until the order's payment shows `status`.
async fn await_payment(stack: &TestStack, order: &str, status: &str) -> Value {
    eventually(
        &format!("the payment of {order} to be {status}"),
        Duration::from_secs(30),
        || async {
            match stack.try_payment(order).await {
                Ok(Some(payment)) if payment["status"] == status => Ok(payment),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

async fn cancelled(stack: &TestStack, id: &str, body: Option<Value>) -> Value {
    let (status, order) = stack.cancel_order(id, body).await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["status"], "CANCELLED", "{order}");
    order
}

#[tokio::test]
async fn the_cancel_route_answers_every_case_of_the_contract() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .start()
        .await;

    // COMPLETED within the window: cancelled, with the reason the customer gave.
    let order = stack
        .place_order("customer-1", &[("product-A", 2)], 20.0)
        .await;
    let id = id_of(&order);
    assert_eq!(stack.final_order(&id).await["status"], "COMPLETED");
    let done = cancelled(&stack, &id, Some(json!({"reason": "changed my mind"}))).await;
    assert_eq!(done["cancellation_reason"], "CUSTOMER_CANCELLED");
    // Cancelling twice is harmless: the same order, unchanged.
    let again = cancelled(&stack, &id, None).await;
    assert_eq!(again, done);

    // An order that ended CANCELLED by itself keeps its reason.
    let short = stack
        .place_order("customer-1", &[("product-C", 1)], 5.0)
        .await;
    let short_id = id_of(&short);
    assert_eq!(
        stack.final_order(&short_id).await["cancellation_reason"],
        "INVENTORY_UNAVAILABLE"
    );
    let unchanged = cancelled(&stack, &short_id, None).await;
    assert_eq!(unchanged["cancellation_reason"], "INVENTORY_UNAVAILABLE");

    // Unknown and malformed ids, malformed JSON, a reason over 500 characters.
    let unknown = uuid::Uuid::new_v4().to_string();
    let (status, body) = stack.cancel_order(&unknown, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["detail"], "Order not found");
    let (status, _) = stack.cancel_order("not-a-uuid", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let malformed = stack
        .http
        .post(stack.url(Service::Order, &format!("/api/orders/{id}/cancel")))
        .header("content-type", "application/json")
        .body("{\"reason\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let pending = stack
        .place_order("customer-1", &[("product-B", 1)], 5.0)
        .await;
    let long = "x".repeat(501);
    let (status, body) = stack
        .cancel_order(&id_of(&pending), Some(json!({"reason": long})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = stack
        .cancel_order(&id_of(&pending), Some(json!({"reason": 7})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Nothing of it changed the order (it may have completed meanwhile, not been cancelled).
    assert_ne!(stack.order(&id_of(&pending)).await["status"], "CANCELLED");

    // The admin token cancels as an operator, in the open API too.
    let by_operator = stack
        .admin(
            reqwest::Method::POST,
            Service::Order,
            &format!("/api/orders/{}/cancel", id_of(&pending)),
        )
        .json(&json!({"reason": "fraud check"}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_operator.status(), StatusCode::OK);
    let by_operator: Value = by_operator.json().await.unwrap();
    assert_eq!(by_operator["cancellation_reason"], "OPERATOR_CANCELLED");
    // An operator's cancel is an admin action: the operator log has it (CONTRACT §16).
    let log: Value = stack
        .admin(
            reqwest::Method::GET,
            Service::Order,
            "/admin/operator-log?limit=5",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "cancel")
        .unwrap_or_else(|| panic!("no cancel in {log}"));
    assert_eq!(entry["actor"], "admin-token", "{entry}");
    assert_eq!(entry["target"], id_of(&pending), "{entry}");
    assert_eq!(entry["detail"]["note"], "fraud check", "{entry}");
    // A customer's own cancel is not an admin action.
    assert_eq!(
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "cancel")
            .count(),
        1,
        "{log}"
    );

    // The saga view says who cancelled and shows each compensation.
    stack.assert_invariants().await;
    let (_, saga) = stack
        .get_json(Service::Order, &format!("/api/orders/{id}/saga"))
        .await;
    let steps: Vec<&str> = saga
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["event_type"].as_str().unwrap())
        .collect();
    for expected in [
        "OrderConfirmed",
        "OrderCancelled",
        "InventoryReleased",
        "PaymentRefunded",
    ] {
        assert!(
            steps.contains(&expected),
            "{expected} missing from {steps:?}"
        );
    }
    let cancel_step = saga
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["event_type"] == "OrderCancelled")
        .unwrap();
    assert_eq!(
        cancel_step["requested_by"],
        json!({"role": "customer", "note": "changed my mind"})
    );
    // Stock back, charge refunded once, the customer told both, in that order.
    assert_eq!(stack.stock().await["product-A"], (10, 0));
    assert_eq!(await_payment(&stack, &id, "REFUNDED").await["amount"], 20.0);
    let told = stack.notifications(&id).await;
    let finals: Vec<&String> = told
        .iter()
        .filter(|t| *t == "OrderConfirmed" || *t == "OrderCancelled")
        .collect();
    assert_eq!(finals, ["OrderConfirmed", "OrderCancelled"]);
    assert_eq!(published(&stack, "OrderCancelled", &id).await, 1);
    assert_eq!(published(&stack, "InventoryReleased", &id).await, 1);
    let counted = stack
        .metric_sum(Service::Order, "orders_cancelled_total")
        .await;
    assert!(counted >= 3.0, "orders_cancelled_total {counted}");
    stack.cleanup().await;
}

#[tokio::test]
async fn a_completed_order_past_the_window_cannot_be_cancelled() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .service_env(Service::Order, "ORDER_CANCEL_WINDOW_SECS", "0")
        .start()
        .await;
    let id = id_of(&stack.place_order("c", &[("product-A", 1)], 9.0).await);
    let before = stack.final_order(&id).await;
    assert_eq!(before["status"], "COMPLETED");
    let (status, body) = stack.cancel_order(&id, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("window"),
        "{body}"
    );
    assert_eq!(stack.order(&id).await, before);
    assert_eq!(await_payment(&stack, &id, "PROCESSED").await["amount"], 9.0);
    stack.assert_invariants().await;
    assert_eq!(published(&stack, "OrderCancelled", &id).await, 0);
    stack.cleanup().await;
}

#[tokio::test]
async fn a_cancel_before_inventory_reserves_reserves_and_charges_nothing() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .start()
        .await;
    // inventory-service frozen: the OrderCreated waits in its queue.
    stack.pause(Service::Inventory);
    let id = id_of(&stack.place_order("c", &[("product-B", 2)], 30.0).await);
    stack.await_queued(Service::Inventory, 1).await;
    let done = cancelled(&stack, &id, None).await;
    assert_eq!(done["cancellation_reason"], "CUSTOMER_CANCELLED");
    // The race this test is about: payment-service has the cancellation (its VOID
    // tombstone) before any reservation. order-service publishes OrderCancelled through its
    // outbox after the 200, so inventory is resumed only once the tombstone is there —
    // resumed at once, a slow relay lets the reservation reach payment-service first, and
    // the order is charged and refunded (also correct, but another test's race).
    let payments = stack.db(Service::Payment).await;
    eventually(
        "payment-service's VOID tombstone for the cancelled order",
        Duration::from_secs(30),
        || async {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM payments WHERE order_id = $1::uuid")
                    .bind(&id)
                    .fetch_optional(&payments)
                    .await
                    .map_err(|error| error.to_string())?;
            match status.as_deref() {
                Some("VOID") => Ok(()),
                other => Err(format!("payment row {other:?}")),
            }
        },
    )
    .await;
    stack.resume(Service::Inventory);

    stack.assert_invariants().await;
    assert_eq!(stack.order(&id).await["status"], "CANCELLED");
    assert_eq!(stack.stock().await["product-B"], (5, 0));
    assert!(
        stack.payment(&id).await.is_none(),
        "a cancelled order before any reservation is never charged"
    );
    assert_eq!(stack.notifications(&id).await, ["OrderCancelled"]);
    stack.cleanup().await;
}

/// The charge is held at the provider when the customer cancels; it then succeeds (and
/// is refunded once) or is declined (nothing to refund, and no next attempt).
async fn cancel_while_the_provider_holds_the_charge(declined: bool) {
    let stub = ProviderStub::start().await;
    stub.set_faults(|request| (request.kind == Kind::Charge).then_some(Fault::HoldThenApply));
    stub.set_declines(move |_, _| declined);
    let stack = with_provider(&stub)
        .service_env(Service::Payment, "PAYMENT_MAX_ATTEMPTS", "3")
        .service_env(Service::Payment, "PAYMENT_RETRY_BASE_MS", "10")
        .start()
        .await;
    let id = id_of(&stack.place_order("c", &[("product-A", 1)], 12.5).await);
    eventually(
        "the charge held at the provider",
        Duration::from_secs(30),
        || async {
            match stub.held().len() {
                0 => Err("no call yet".to_owned()),
                _ => Ok(()),
            }
        },
    )
    .await;
    cancelled(&stack, &id, None).await;
    // The cancellation reaches payment-service while its call is still held.
    eventually(
        "payment-service to see the cancel",
        Duration::from_secs(30),
        || async {
            let logs = stack.logs(Service::Payment);
            match logs.contains("order cancelled while an attempt is with the provider") {
                true => Ok(()),
                false => Err("not yet".to_owned()),
            }
        },
    )
    .await;
    assert_eq!(stub.held().len(), 1, "the charge is still held");
    stub.release();

    let status = if declined { "FAILED" } else { "REFUNDED" };
    await_payment(&stack, &id, status).await;
    stub.assert_charged_once(&stack).await;
    assert_eq!(stack.order(&id).await["status"], "CANCELLED");
    let charges = stub.charges();
    assert_eq!(
        charges.len(),
        1,
        "one attempt, none after the cancel: {charges:?}"
    );
    assert_eq!(stub.refunds().len(), usize::from(!declined));
    assert_eq!(published(&stack, "OrderConfirmed", &id).await, 0);
    stack.cleanup().await;
}

#[tokio::test]
async fn a_cancel_while_the_provider_holds_a_charge_that_succeeds_refunds_it_once() {
    cancel_while_the_provider_holds_the_charge(false).await;
}

#[tokio::test]
async fn a_cancel_while_the_provider_holds_a_charge_that_is_declined_refunds_nothing() {
    cancel_while_the_provider_holds_the_charge(true).await;
}

#[tokio::test]
async fn a_cancel_while_the_simulator_has_the_charge_pending_refunds_it_once() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .start()
        .await;
    // payment-service frozen: the InventoryReserved waits for it, then the cancellation.
    stack.pause(Service::Payment);
    let id = id_of(&stack.place_order("c", &[("product-A", 3)], 45.0).await);
    await_published(&stack, "InventoryReserved", &id).await;
    cancelled(&stack, &id, None).await;
    await_published(&stack, "OrderCancelled", &id).await;
    stack.resume(Service::Payment);

    let payment = await_payment(&stack, &id, "REFUNDED").await;
    assert_eq!(payment["amount"], 45.0);
    stack.assert_invariants().await;
    assert_eq!(published(&stack, "PaymentRefunded", &id).await, 1);
    assert_eq!(stack.stock().await["product-A"], (10, 0));
    stack.cleanup().await;
}

#[tokio::test]
async fn a_payment_processed_on_its_way_never_completes_a_cancelled_order() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .through_proxy(Service::Order, Dependency::Broker)
        .start()
        .await;
    // payment-service frozen until order-service is cut off from the broker: then its
    // PaymentProcessed waits in order-service's queue.
    stack.pause(Service::Payment);
    let id = id_of(&stack.place_order("c", &[("product-A", 1)], 7.0).await);
    await_published(&stack, "InventoryReserved", &id).await;
    stack.proxy(Service::Order, Dependency::Broker).cut();
    stack.resume(Service::Payment);
    await_published(&stack, "PaymentProcessed", &id).await;
    let done = cancelled(&stack, &id, None).await;
    assert_eq!(done["cancellation_reason"], "CUSTOMER_CANCELLED");
    stack.proxy(Service::Order, Dependency::Broker).restore();

    await_payment(&stack, &id, "REFUNDED").await;
    stack.assert_invariants().await;
    assert_eq!(stack.order(&id).await["status"], "CANCELLED");
    assert_eq!(published(&stack, "OrderConfirmed", &id).await, 0);
    assert!(
        !stack
            .notifications(&id)
            .await
            .contains(&"OrderConfirmed".to_owned()),
        "a cancelled order is never confirmed"
    );
    // order-service noted the late event without acting on it.
    assert!(
        stack
            .timeline(&id)
            .await
            .contains(&"PaymentProcessed".to_owned())
    );
    stack.cleanup().await;
}

#[tokio::test]
async fn a_cancel_racing_the_timeout_and_eight_concurrent_cancels_end_the_order_once() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .service_env(Service::Order, "SAGA_TIMEOUT_SECS", SAGA_TIMEOUT_SECS)
        .start()
        .await;
    // payment-service frozen: the orders stay PENDING.
    stack.pause(Service::Payment);
    let raced = id_of(&stack.place_order("c", &[("product-A", 1)], 3.0).await);
    let crowded = id_of(&stack.place_order("c", &[("product-B", 1)], 4.0).await);
    await_published(&stack, "InventoryReserved", &raced).await;
    await_published(&stack, "InventoryReserved", &crowded).await;

    // The timeout sweeper and a customer's cancel go for the same order.
    stack.expire(std::slice::from_ref(&raced)).await;
    cancelled(&stack, &raced, None).await;
    // Eight cancels of one order at once.
    let answers = join_all((0..8).map(|_| stack.cancel_order(&crowded, None))).await;
    for (status, order) in &answers {
        assert_eq!(*status, StatusCode::OK, "{order}");
        assert_eq!(order["cancellation_reason"], "CUSTOMER_CANCELLED");
    }
    stack.resume(Service::Payment);

    stack.assert_invariants().await;
    let ended = stack.order(&raced).await;
    assert!(
        matches!(
            ended["cancellation_reason"].as_str(),
            Some("TIMEOUT" | "CUSTOMER_CANCELLED")
        ),
        "{ended}"
    );
    for id in [&raced, &crowded] {
        assert_eq!(published(&stack, "OrderCancelled", id).await, 1, "{id}");
        assert_eq!(
            stack
                .notifications(id)
                .await
                .iter()
                .filter(|t| *t == "OrderCancelled")
                .count(),
            1
        );
    }
    stack.cleanup().await;
}

#[tokio::test]
async fn a_cancel_after_completion_survives_payment_service_killed_before_the_refund() {
    let stub = ProviderStub::start().await;
    let mut stack = with_provider(&stub).start().await;
    // Other customers' orders keep coming through the kill (product A); the cancelled one
    // is of product B.
    stack.set_stock("product-A", 100_000).await;
    let id = id_of(&stack.place_order("c", &[("product-B", 2)], 18.0).await);
    assert_eq!(stack.final_order(&id).await["status"], "COMPLETED");
    let load = stack.post_orders_throughout(Duration::from_millis(40));
    load.await_more_accepted(5).await;
    // payment-service dies before the cancellation reaches it.
    stack.kill(Service::Payment).await;
    cancelled(&stack, &id, None).await;
    await_published(&stack, "InventoryReleased", &id).await;
    assert_eq!(stack.stock().await["product-B"], (5, 0));
    assert!(
        stub.refunds().is_empty(),
        "nothing refunded while payment-service is down"
    );
    load.await_more_accepted(5).await;
    stack.restart(Service::Payment, 1).await;
    load.await_more_accepted(5).await;
    let posted = load.stop().await;

    await_payment(&stack, &id, "REFUNDED").await;
    let accepted: Vec<Value> = saga_tests::load::accepted(&posted)
        .iter()
        .map(|id| json!({ "id": id }))
        .collect();
    stack.final_orders(&accepted).await;
    stub.assert_charged_once(&stack).await;
    assert_eq!(stub.refunds().len(), 1);
    stack.cleanup().await;
}

#[tokio::test]
async fn a_cancel_after_completion_survives_order_service_killed_before_the_refund() {
    let stub = ProviderStub::start().await;
    let mut stack = with_provider(&stub).start().await;
    // Other customers' orders keep coming through the kill (product A).
    stack.set_stock("product-A", 100_000).await;
    let id = id_of(&stack.place_order("c", &[("product-B", 1)], 11.0).await);
    assert_eq!(stack.final_order(&id).await["status"], "COMPLETED");
    let load = stack.post_orders_throughout(Duration::from_millis(40));
    load.await_more_accepted(5).await;
    // payment-service frozen so no refund can happen; order-service killed right after it
    // committed the cancellation, maybe before its relay published it.
    stack.pause(Service::Payment);
    cancelled(&stack, &id, None).await;
    stack.kill(Service::Order).await;
    assert!(stub.refunds().is_empty(), "the refund had not happened");
    stack.resume(Service::Payment);
    stack.restart(Service::Order, 1).await;
    load.retarget(&stack);
    load.await_more_accepted(5).await;
    let posted = load.stop().await;

    await_payment(&stack, &id, "REFUNDED").await;
    let accepted: Vec<Value> = saga_tests::load::accepted(&posted)
        .iter()
        .map(|id| json!({ "id": id }))
        .collect();
    stack.final_orders(&accepted).await;
    stub.assert_charged_once(&stack).await;
    assert_eq!(stack.order(&id).await["status"], "CANCELLED");
    assert_eq!(stub.refunds().len(), 1);
    stack.cleanup().await;
}

#[tokio::test]
async fn cancelling_a_third_of_the_orders_under_load_keeps_every_invariant() {
    let stub = ProviderStub::start().await;
    stub.set_declines(|key, _| key.as_bytes()[0] % 5 == 0);
    let mut owned = with_provider(&stub).start().await;
    owned.set_stock("product-A", 400).await;
    owned.set_stock("product-B", 400).await;

    // Orders posted for about three seconds; every third cancelled 0–1.5 s after it was
    // accepted, while the rest keep coming.
    let stack = &owned;
    let placed = join_all((0..120u64).map(|n| async move {
        tokio::time::sleep(Duration::from_millis(n * 25)).await;
        let product = if n % 2 == 0 { "product-A" } else { "product-B" };
        let order = stack
            .place_order(&format!("c{n}"), &[(product, 1)], 5.0)
            .await;
        let id = id_of(&order);
        if n % 3 == 0 {
            tokio::time::sleep(Duration::from_millis((n * 37) % 1500)).await;
            let (status, answer) = stack.cancel_order(&id, None).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            assert_eq!(answer["status"], "CANCELLED");
        }
        id
    }))
    .await;

    stub.assert_charged_once(stack).await;
    let mut cancelled_on_request = 0;
    for id in &placed {
        let order = stack.order(id).await;
        if order["cancellation_reason"] == "CUSTOMER_CANCELLED" {
            cancelled_on_request += 1;
        }
    }
    // A cancel of an order whose payment had already failed changes nothing; most land first.
    assert!(
        cancelled_on_request >= 20,
        "{cancelled_on_request} of 40 cancels took"
    );
    for id in &placed {
        assert!(published(stack, "OrderCancelled", id).await <= 1);
    }
    owned.cleanup().await;
}
