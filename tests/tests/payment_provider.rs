//! CONTRACT §7: payments go through a provider API (the tests' own stub, with a ledger) and
//! the outside world is charged once — under provider faults, replicas, SIGKILL, duplicate
//! deliveries, batches that touch the same orders in opposite orders, and a saga timeout
//! while the provider is slow. After each, the stub's ledger shows at most one succeeded
//! charge per order, exactly one (not refunded) per `COMPLETED` order, and none or one
//! refunded once per `CANCELLED` order.
//!
//! Where a test strikes while a call is in flight, the stub holds that call until the test
//! lets it go ([`Fault::HoldThenApply`], [`Fault::ApplyThenHold`]) and a saga timeout is
//! triggered by the test ([`TestStack::expire`]): nothing races a clock. The events the test
//! publishes itself are written out as JSON here, as CONTRACT §4 spells them.

use futures_util::future::join_all;
use saga_tests::broker::Tapped;
use saga_tests::provider_stub::{Fault, Kind, ProviderStub};
use saga_tests::saga_timeout::SAGA_TIMEOUT_SECS;
use saga_tests::stack::{Dependency, StackBuilder};
use saga_tests::{Service, TestStack, contract, eventually};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// A stack whose payment-service charges through `stub`, giving up on a call after
/// `timeout_ms`.
fn with_provider(stub: &ProviderStub, timeout_ms: u64) -> StackBuilder {
    with_provider_url(&stub.url(), timeout_ms)
}

/// The same, through the provider at `url` (a door of a stub).
fn with_provider_url(url: &str, timeout_ms: u64) -> StackBuilder {
    TestStack::builder()
        .service_env(Service::Payment, "PAYMENT_PROVIDER_URL", url)
        .service_env(
            Service::Payment,
            "PAYMENT_PROVIDER_TIMEOUT_MS",
            &timeout_ms.to_string(),
        )
}

fn id_of(order: &Value) -> String {
    order["id"].as_str().unwrap().to_owned()
}

/// The same event with a fresh `event_id`/`message_id`, as a buggy publisher might send.
fn with_new_id(event: &Tapped) -> Tapped {
    let mut body = event.json();
    let id = Uuid::new_v4().to_string();
    body["event_id"] = id.clone().into();
    Tapped {
        routing_key: event.routing_key.clone(),
        properties: event.properties.clone().with_message_id(id.into()),
        body: serde_json::to_vec(&body).unwrap(),
    }
}

#[tokio::test]
async fn every_kind_of_provider_fault_still_charges_each_order_exactly_once() {
    let stub = ProviderStub::start().await;
    // Every first attempt is declined, so each order uses two keys; the first request of
    // each key meets one of six faults in turn (the slow one outlasts the timeout; a 422
    // says the provider thinks our request is wrong — still the same key next time).
    stub.set_declines(|_, attempt| attempt == 1);
    let turn = AtomicUsize::new(0);
    stub.set_faults(move |request| {
        (request.try_of_key == 1).then(|| match turn.fetch_add(1, Ordering::SeqCst) % 6 {
            0 => Fault::ApplyThen500,
            1 => Fault::ApplyThenAnswerAfter(Duration::from_secs(3)),
            2 => Fault::Unavailable,
            3 => Fault::Slow(Duration::from_millis(1_500)),
            4 => Fault::Refuse(429),
            _ => Fault::Refuse(422),
        })
    });
    let stack = with_provider(&stub, 1_000).start().await;

    let mut orders = Vec::new();
    for n in 0..6 {
        orders.push(
            stack
                .place_order("c", &[("product-A", 1)], 10.0 + f64::from(n))
                .await,
        );
    }
    for order in &orders {
        let id = id_of(order);
        assert_eq!(stack.final_order(&id).await["status"], "COMPLETED");
        // Each fault was answered by asking again with the same key; no third key.
        for attempt in [1, 2] {
            let tries = stub.tries_of(&format!("{id}:{attempt}"));
            assert!(tries >= 2, "key {id}:{attempt} was tried {tries} times");
        }
        assert_eq!(stub.tries_of(&format!("{id}:3")), 0);
        assert_eq!(stack.payment(&id).await.unwrap()["attempts"], 2);
    }
    stub.assert_charged_once(&stack).await;
    assert_eq!(stack.broker.events_of("PaymentProcessed").await.len(), 6);
    assert!(
        stack
            .logs(Service::Payment)
            .contains("the provider refused our request"),
        "a 422 was not logged as our bug"
    );
    let asked = stack
        .metric_sum(Service::Payment, "payment_provider_requests_total")
        .await;
    assert!(asked >= 24.0, "{asked} provider requests counted");
    stack.cleanup().await;
}

/// Two replicas, each through its own door of the stub: replica A's calls are held at the
/// provider until the test lets them go, replica B's meet 500s and slow answers. With A
/// provably mid-call, it is SIGKILLed; B takes over its rows once their lease ends and asks
/// again under the same keys. Both served calls, and each order was charged once.
#[tokio::test]
async fn two_payment_replicas_charge_each_order_once_when_one_dies_mid_call() {
    let stub = ProviderStub::start().await;
    let orders_seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = orders_seen.clone();
    // Every third order's first attempt is declined.
    stub.set_declines(move |order, attempt| {
        let mut seen = seen.lock().unwrap();
        if !seen.iter().any(|o| o == order) {
            seen.push(order.to_owned());
        }
        let rank = seen.iter().position(|o| o == order).unwrap();
        attempt == 1 && rank % 3 == 0
    });
    let turn = AtomicUsize::new(0);
    stub.set_faults(move |request| {
        if request.door == "a" {
            return Some(Fault::HoldThenApply);
        }
        (request.try_of_key == 1).then_some(())?;
        match turn.fetch_add(1, Ordering::SeqCst) % 3 {
            0 => Some(Fault::ApplyThen500),
            1 => Some(Fault::Slow(Duration::from_millis(200))),
            _ => None,
        }
    });
    let mut stack = with_provider_url(&stub.door_url("a"), 1_000).start().await;
    let door_b = stub.door_url("b");
    stack
        .add_replica_with_env(Service::Payment, &[("PAYMENT_PROVIDER_URL", &door_b)])
        .await;
    stack.set_stock("product-A", 100).await;

    // B frozen while the reservations arrive, A surely takes some of them.
    stack.pause_one(Service::Payment, 1);
    let orders = join_all((0..30).map(|n| {
        let stack = &stack;
        async move {
            stack
                .place_order(&format!("c{n}"), &[("product-A", 1)], 5.0)
                .await
        }
    }))
    .await;
    let ids: Vec<String> = orders.iter().map(id_of).collect();
    let held_at_a = || -> BTreeSet<String> {
        stub.held()
            .into_iter()
            .filter(|(door, _)| door == "a")
            .map(|(_, key)| key)
            .collect()
    };
    eventually(
        "replica A to have calls in flight",
        Duration::from_secs(30),
        || async {
            match held_at_a().len() {
                0 => Err("none".to_owned()),
                _ => Ok(()),
            }
        },
    )
    .await;
    stack.resume_one(Service::Payment, 1);
    // Every order ends through B, or waits on a call A has in flight.
    let in_flight = eventually(
        "each order completed by B or held at A",
        Duration::from_secs(60),
        || async {
            let held = held_at_a();
            let held_orders: BTreeSet<&str> = held
                .iter()
                .filter_map(|key| key.split(':').next())
                .collect();
            let mut completed = 0;
            for id in &ids {
                if stack.order(id).await["status"] == "COMPLETED" {
                    completed += 1;
                }
            }
            if completed + held_orders.len() == ids.len() && !held.is_empty() {
                Ok(held.clone())
            } else {
                Err(format!("{completed} completed, {} held", held_orders.len()))
            }
        },
    )
    .await;

    stack.kill_one(Service::Payment, 0).await;
    // Killed mid-call: the provider still works on what it asked.
    assert_eq!(held_at_a(), in_flight, "A's calls ended before the kill");
    stub.release();

    for order in stack.final_orders(&orders).await {
        assert_eq!(order["status"], "COMPLETED", "{order}");
    }
    stub.assert_charged_once(&stack).await;
    // Both replicas served calls: A the held ones, B (besides any of its own) A's, under
    // A's keys.
    let asked_b: BTreeSet<String> = stub.received_at("b").into_iter().map(|r| r.key).collect();
    for key in &in_flight {
        assert!(asked_b.contains(key), "B never asked again for {key}");
    }
    let processed = stack
        .logs(Service::Payment)
        .matches("payment processed")
        .count();
    assert_eq!(processed, 30, "payments processed across the replicas");
    let paid: BTreeSet<String> = stack
        .broker
        .events_of("PaymentProcessed")
        .await
        .iter()
        .map(Tapped::order_id)
        .collect();
    assert_eq!(paid.len(), 30);
    stack.cleanup().await;
}

/// The provider charges at once but answers no try of any key until the test lets it:
/// payment-service is killed while it waits, each order charged at the provider and not
/// recorded here — a state that lasts as long as the test wants, whatever the client's
/// timeout does meanwhile (its retries of the key are held too).
#[tokio::test]
async fn killing_payment_service_while_the_provider_holds_its_answers_repeats_no_charge() {
    let stub = ProviderStub::start().await;
    stub.set_faults(|_| Some(Fault::ApplyThenHold));
    // A short timeout keeps the lease (timeout + 5 s) a restart waits out short.
    let mut stack = with_provider(&stub, 1_000).start().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(id_of(
            &stack.place_order("c", &[("product-A", 1)], 9.0).await,
        ));
    }
    eventually(
        "the provider to charge every order",
        Duration::from_secs(30),
        || async {
            let charged = stub.charges().len();
            if charged == ids.len() {
                Ok(())
            } else {
                Err(format!("{charged} charges"))
            }
        },
    )
    .await;
    // In flight at the moment of the kill: charged at the provider, not recorded here.
    for id in &ids {
        let payment = stack.payment(id).await.expect("a payment row");
        assert_eq!(payment["status"], "PENDING", "{payment}");
        assert_eq!(payment["charge_id"], Value::Null, "{payment}");
        assert_eq!(stack.order(id).await["status"], "PENDING");
    }
    stack.kill(Service::Payment).await;
    stub.release();
    stack.restart(Service::Payment, 1).await;

    for id in &ids {
        assert_eq!(stack.final_order(id).await["status"], "COMPLETED");
        assert!(
            stub.tries_of(&format!("{id}:1")) >= 2,
            "the attempt was not asked again"
        );
        assert_eq!(
            stub.tries_of(&format!("{id}:2")),
            0,
            "a second attempt was started"
        );
    }
    assert_eq!(stub.charges().len(), ids.len());
    stub.assert_charged_once(&stack).await;
    stack.cleanup().await;
}

#[tokio::test]
async fn duplicate_deliveries_while_charges_are_in_flight_charge_once() {
    let stub = ProviderStub::start().await;
    // Every charge is held until the duplicates have been handled; a timeout far off, so
    // the client waits for the held answers instead of asking again meanwhile.
    stub.set_faults(|request| (request.try_of_key == 1).then_some(Fault::HoldThenApply));
    let stack = with_provider(&stub, 30_000).start().await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(id_of(
            &stack.place_order("c", &[("product-A", 1)], 3.0).await,
        ));
    }
    eventually(
        "every charge to be in flight",
        Duration::from_secs(30),
        || async {
            match stub.in_progress() {
                4 => Ok(()),
                n => Err(format!("{n} in flight")),
            }
        },
    )
    .await;
    let reserved = stack.broker.events_of("InventoryReserved").await;
    assert_eq!(reserved.len(), 4);
    let consumed = || stack.metric_sum(Service::Payment, "messages_consumed_total");
    let before = consumed().await;
    for event in &reserved {
        stack.broker.republish(event).await;
        stack.broker.republish(&with_new_id(event)).await;
    }
    eventually(
        "the duplicates to be handled",
        Duration::from_secs(30),
        || async {
            match consumed().await - before {
                handled if handled >= 8.0 => Ok(()),
                handled => Err(format!("{handled} handled")),
            }
        },
    )
    .await;
    assert_eq!(
        stub.in_progress(),
        4,
        "a charge ended before its duplicates"
    );
    stub.release();
    for id in &ids {
        assert_eq!(stack.final_order(id).await["status"], "COMPLETED");
        assert_eq!(stub.tries_of(&format!("{id}:2")), 0);
    }
    stub.assert_charged_once(&stack).await;
    assert_eq!(stack.broker.events_of("PaymentProcessed").await.len(), 4);
    stack.cleanup().await;
}

#[tokio::test]
async fn a_duplicate_reservation_with_a_new_id_starts_no_second_retry_loop() {
    let stub = ProviderStub::start().await;
    stub.set_declines(|_, attempt| attempt < 3);
    let stack = with_provider(&stub, 5_000)
        .service_env(Service::Payment, "PAYMENT_RETRY_BASE_MS", "800")
        .start()
        .await;
    let id = id_of(&stack.place_order("c", &[("product-A", 1)], 4.0).await);
    eventually(
        "the first attempt to be declined",
        Duration::from_secs(30),
        || async {
            match stack.payment(&id).await {
                Some(p) if p["attempts"] == 1 && p["last_error"].as_str().is_some() => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let reserved = stack.broker.events_of("InventoryReserved").await;
    stack.broker.republish(&with_new_id(&reserved[0])).await;
    stack.broker.republish(&with_new_id(&reserved[0])).await;

    assert_eq!(stack.final_order(&id).await["status"], "COMPLETED");
    let times: Vec<_> = (1..=3)
        .map(|attempt| {
            let key = format!("{id}:{attempt}");
            let received: Vec<_> = stub
                .received()
                .into_iter()
                .filter(|r| r.key == key)
                .collect();
            assert_eq!(
                received.len(),
                1,
                "key {key} was asked {} times",
                received.len()
            );
            received[0].at
        })
        .collect();
    // One retry loop keeps the backoff: ~0.8 s, then ~1.6 s (±30 % jitter, so at least
    // 560 ms and 1,120 ms; a load only lengthens them). A second loop would ask for the
    // next attempt right after the duplicate arrived.
    let gaps = [times[1] - times[0], times[2] - times[1]];
    assert!(gaps[0] >= Duration::from_millis(500), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(1_000), "{gaps:?}");
    assert_eq!(stub.tries_of(&format!("{id}:4")), 0);
    stub.assert_charged_once(&stack).await;
    stack.cleanup().await;
}

/// The saga times out — triggered by the test — while every charge is held at the
/// provider; the charges then succeed and each is refunded once, the first refund request
/// meeting a 500.
#[tokio::test]
async fn a_saga_that_times_out_while_the_provider_is_slow_is_refunded_exactly_once() {
    let stub = ProviderStub::start().await;
    stub.set_faults(|request| match (request.kind, request.try_of_key) {
        (Kind::Charge, 1) => Some(Fault::HoldThenApply),
        (Kind::Refund, 1) => Some(Fault::ApplyThen500),
        _ => None,
    });
    // The client waits for the held charges rather than asking again meanwhile.
    let stack = with_provider(&stub, 30_000)
        .service_env(Service::Order, "SAGA_TIMEOUT_SECS", SAGA_TIMEOUT_SECS)
        .start()
        .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(id_of(
            &stack.place_order("c", &[("product-B", 1)], 7.5).await,
        ));
    }
    eventually(
        "every charge to be in flight",
        Duration::from_secs(30),
        || async {
            match stub.in_progress() {
                3 => Ok(()),
                n => Err(format!("{n} in flight")),
            }
        },
    )
    .await;
    for id in &ids {
        assert_eq!(stack.order(id).await["status"], "PENDING");
    }
    stack.expire(&ids).await;
    for id in &ids {
        let done = stack.final_order(id).await;
        assert_eq!(done["cancellation_reason"], "TIMEOUT");
    }
    assert_eq!(
        stub.in_progress(),
        3,
        "a charge ended before its order timed out"
    );
    stub.release();
    for id in &ids {
        eventually("the refund", Duration::from_secs(60), || async {
            match stack.payment(id).await {
                Some(p) if p["status"] == "REFUNDED" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        assert_eq!(stub.tries_of(&format!("{id}:refund")), 2);
    }
    stub.assert_charged_once(&stack).await;
    assert_eq!(stub.refunds().len(), 3);
    // The API shows REFUNDED at commit; the relay publishes the event a moment later.
    eventually(
        "one PaymentRefunded per order",
        Duration::from_secs(20),
        || async {
            match stack.broker.events_of("PaymentRefunded").await.len() {
                3 => Ok(()),
                other => Err(format!("{other} PaymentRefunded events")),
            }
        },
    )
    .await;
    assert_eq!(stack.stock().await["product-B"], (5, 0));
    stack.cleanup().await;
}

/// An `InventoryReserved` body as inventory-service publishes it (CONTRACT §4).
fn reserved(order_id: Uuid, total: f64) -> Value {
    json!({"order_id": order_id, "customer_id": "c",
           "items": [{"product_id": "product-A", "quantity": 1}], "total_amount": total})
}

/// An `OrderCancelled` body as order-service publishes it on a timeout.
fn cancelled(order_id: Uuid) -> Value {
    json!({"order_id": order_id, "customer_id": "c", "reason": "TIMEOUT",
           "items": [{"product_id": "product-A", "quantity": 1}]})
}

/// Orders order-service never saw, reserved and cancelled by events the test publishes:
/// every service but payment-service takes them as the no-ops they are for it.
#[tokio::test]
async fn batches_that_touch_two_orders_in_opposite_orders_never_deadlock() {
    let stub = ProviderStub::start().await;
    let stack = with_provider(&stub, 5_000)
        .replicas(Service::Payment, 2)
        .through_proxy(Service::Payment, Dependency::Database)
        .start()
        .await;
    // Both replicas frozen, the broker deals the messages out in turn: one replica gets
    // [InventoryReserved(X), OrderCancelled(Y), …], the other [InventoryReserved(Y),
    // OrderCancelled(X), …], and each applies its share as one batch.
    stack.pause(Service::Payment);
    let pairs: Vec<(Uuid, Uuid)> = (0..10).map(|_| (Uuid::new_v4(), Uuid::new_v4())).collect();
    for (x, y) in &pairs {
        for (event, body) in [
            ("InventoryReserved", reserved(*x, 12.0)),
            ("InventoryReserved", reserved(*y, 12.0)),
            ("OrderCancelled", cancelled(*y)),
            ("OrderCancelled", cancelled(*x)),
        ] {
            stack.broker.publish_event(event, body).await;
        }
    }
    stack.await_unacked(Service::Payment, 40).await;
    // Slow statements make the two batches overlap, as they would under load.
    let database = stack.proxy(Service::Payment, Dependency::Database);
    database.set_delay(Duration::from_millis(10));
    stack.resume(Service::Payment);

    eventually(
        "every message to be handled",
        Duration::from_secs(60),
        || async {
            let handled = stack
                .metric_sum(Service::Payment, "messages_consumed_total")
                .await;
            let settled = stack.outbox_backlog(Service::Payment).await == 0;
            if handled >= 40.0 && settled {
                Ok(())
            } else {
                Err(format!("{handled} handled"))
            }
        },
    )
    .await;
    database.set_delay(Duration::ZERO);
    let batches = stack
        .metric_sum(Service::Payment, "consumer_batch_size_count")
        .await;
    assert!(
        batches < 40.0,
        "no batch formed: {batches} batches for 40 messages"
    );
    let logs = stack.logs(Service::Payment);
    assert!(!logs.contains("deadlock"), "a batch deadlocked");
    assert!(!logs.contains("batch failed"), "a batch failed");

    // Every order ends cancelled at the provider: not charged, or refunded once.
    let orders: BTreeMap<String, (String, i64)> = pairs
        .iter()
        .flat_map(|(x, y)| [x, y])
        .map(|id| (id.to_string(), ("CANCELLED".to_owned(), 1_200)))
        .collect();
    eventually(
        "every payment to settle",
        Duration::from_secs(60),
        || async {
            for id in orders.keys() {
                if let Some(p) = stack.payment(id).await
                    && !matches!(p["status"].as_str(), Some("FAILED" | "REFUNDED"))
                {
                    return Err(format!("{id}: {p}"));
                }
            }
            match stub.violations(&orders) {
                found if found.is_empty() => Ok(()),
                found => Err(found.join("\n")),
            }
        },
    )
    .await;
    // Nothing was dead-lettered: no letter, whatever its id.
    let dead = contract::dead_letter_queue(&stack.name, Service::Payment);
    let letters: Vec<String> = stack
        .broker
        .peek(&dead)
        .await
        .unwrap()
        .iter()
        .map(|letter| format!("{:?} {}", letter.properties.message_id(), letter.json()))
        .collect();
    assert!(letters.is_empty(), "dead letters: {letters:?}");
    stack.assert_invariants().await;
    stack.cleanup().await;
}

/// The simulator charges an order's first attempt inside payment-service's consumer
/// transaction, together with the payment's answer. payment-service is SIGKILLed with that
/// transaction open (its write of `PROCESSED` held mid-statement by the test), which takes
/// the charge with it: nothing charged, the reservation unacked. The saga then times out;
/// the restarted service charges the redelivered reservation once and refunds the cancelled
/// order once — through a duplicate reservation and repeated cancellations.
#[tokio::test]
async fn the_built_in_simulator_charges_once_and_refunds_a_cancelled_order_once() {
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .service_env(Service::Order, "SAGA_TIMEOUT_SECS", SAGA_TIMEOUT_SECS)
        .start()
        .await;
    let recording = stack
        .hold_writes(
            Service::Payment,
            "payments",
            "INSERT OR UPDATE",
            "NEW.status = 'PROCESSED'",
        )
        .await;
    let order = stack.place_order("c", &[("product-A", 1)], 8.25).await;
    let id = id_of(&order);
    // Mid-charge: the answer's write waits inside the consumer's transaction, whose
    // reservation is delivered and not acked; nothing is committed.
    recording.await_waiting(1).await;
    stack.await_unacked(Service::Payment, 1).await;
    let payment = stack.payment(&id).await;
    assert!(
        payment.as_ref().is_none_or(|p| p["status"] != "PROCESSED"),
        "{payment:?}"
    );
    stack.assert_pending(std::slice::from_ref(&order)).await;
    stack.kill(Service::Payment).await;
    // The killed process's transaction never commits.
    assert_eq!(recording.fail_waiting().await, 1);
    recording.release().await;
    let db = stack.db(Service::Payment).await;
    let charged: i64 = sqlx::query_scalar("SELECT count(*) FROM simulator_charges")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(charged, 0, "the charge outlived its transaction");

    // While it is down the saga times out; its cancellation waits in the payment queue,
    // behind the reservation (a message the broker takes back keeps its place).
    stack.expire(std::slice::from_ref(&id)).await;
    assert_eq!(
        stack.final_order(&id).await["cancellation_reason"],
        "TIMEOUT"
    );
    stack.restart(Service::Payment, 1).await;
    let order_id: Uuid = id.parse().unwrap();
    stack
        .broker
        .publish_event("InventoryReserved", reserved(order_id, 8.25))
        .await;
    for _ in 0..2 {
        stack
            .broker
            .publish_event("OrderCancelled", cancelled(order_id))
            .await;
    }
    // Redelivered together, the reservation and the timeout's cancellation can share one
    // batch, whose cancellations go first: then nothing is ever charged, which is the other
    // correct ending. Either way no charge outlives the order.
    let refunded = eventually(
        "the refund, or no charge at all",
        Duration::from_secs(30),
        || async {
            match stack.payment(&id).await {
                Some(p) if p["status"] == "REFUNDED" => Ok(Some(p)),
                None if stack
                    .logs(Service::Payment)
                    .contains("order already cancelled; not charging") =>
                {
                    Ok(None)
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let Some(refunded) = refunded else {
        let ledger: (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM simulator_charges), (SELECT count(*) FROM simulator_refunds)",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(
            ledger,
            (0, 0),
            "cancelled before any charge: nothing charged or refunded"
        );
        for event_type in ["PaymentProcessed", "PaymentRefunded"] {
            assert!(
                stack.broker.events_of(event_type).await.is_empty(),
                "{event_type}"
            );
        }
        stack.assert_invariants().await;
        stack.cleanup().await;
        return;
    };
    let charge_id: String = sqlx::query_scalar(
        "SELECT charge_id FROM simulator_charges WHERE order_id = $1::uuid AND succeeded",
    )
    .bind(&id)
    .fetch_one(&db)
    .await
    .expect("the simulator charged");
    assert!(charge_id.starts_with("ch_sim_"), "{charge_id}");
    assert_eq!(refunded["charge_id"], charge_id.as_str());
    assert!(
        refunded["refund_id"]
            .as_str()
            .unwrap()
            .starts_with("re_sim_"),
        "{refunded}"
    );
    eventually("the events", Duration::from_secs(30), || async {
        let consumed = stack
            .metric_sum(Service::Payment, "messages_consumed_total")
            .await;
        let backlog = stack.outbox_backlog(Service::Payment).await;
        // The timeout's cancellation, the duplicate reservation, the two cancellations.
        if consumed >= 4.0 && backlog == 0 {
            Ok(())
        } else {
            Err(format!("{consumed} consumed, {backlog} in the outbox"))
        }
    })
    .await;
    for event_type in ["PaymentProcessed", "PaymentRefunded"] {
        let ids: BTreeSet<String> = stack
            .broker
            .events_of(event_type)
            .await
            .iter()
            .map(|e| e.json()["event_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 1, "{event_type}: {ids:?}");
    }
    let ledger: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM simulator_charges), (SELECT count(*) FROM simulator_refunds)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(ledger, (1, 1));
    stack.assert_invariants().await;
    stack.cleanup().await;
}
