//! CONTRACT §7: payments go through a provider API (the tests' own stub, with a ledger) and
//! the outside world is charged once — under provider faults, replicas, SIGKILL, duplicate
//! deliveries, batches that touch the same orders in opposite orders, and a saga timeout
//! while the provider is slow. After each, the stub's ledger shows at most one succeeded
//! charge per order, exactly one (not refunded) per `COMPLETED` order, and none or one
//! refunded once per `CANCELLED` order.

use contract::events::{CancellationReason, Event, InventoryReserved, LineItem, OrderCancelled};
use contract::money::Money;
use contract::quantity::Quantity;
use futures_util::future::join_all;
use saga_tests::broker::Tapped;
use saga_tests::provider_stub::{Fault, Kind, ProviderStub};
use saga_tests::stack::{Dependency, StackBuilder};
use saga_tests::{Service, TestStack, eventually};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// A stack whose payment-service charges through `stub`, giving up on a call after
/// `timeout_ms`.
fn with_provider(stub: &ProviderStub, timeout_ms: u64) -> StackBuilder {
    TestStack::builder()
        .service_env(Service::Payment, "PAYMENT_PROVIDER_URL", &stub.url())
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

#[tokio::test]
async fn two_payment_replicas_charge_each_order_once() {
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
        (request.try_of_key == 1).then_some(())?;
        match turn.fetch_add(1, Ordering::SeqCst) % 3 {
            0 => Some(Fault::ApplyThen500),
            1 => Some(Fault::Slow(Duration::from_millis(200))),
            _ => None,
        }
    });
    let mut stack = with_provider(&stub, 2_000)
        .replicas(Service::Payment, 2)
        .start()
        .await;
    stack.set_stock("product-A", 100).await;

    let orders = join_all((0..30).map(|n| {
        let stack = &stack;
        async move {
            stack
                .place_order(&format!("c{n}"), &[("product-A", 1)], 5.0)
                .await
        }
    }))
    .await;
    for order in &orders {
        assert_eq!(
            stack.final_order(&id_of(order)).await["status"],
            "COMPLETED"
        );
    }
    stub.assert_charged_once(&stack).await;
    // Either replica may claim any row (one can take all 30 at once): what matters is
    // that between them each order was processed once.
    let processed: usize = stack
        .instances(Service::Payment)
        .iter()
        .map(|instance| {
            std::fs::read_to_string(&instance.log)
                .unwrap()
                .matches("payment processed")
                .count()
        })
        .sum();
    assert_eq!(processed, 30, "payments processed across the replicas");
    assert_eq!(stack.broker.events_of("PaymentProcessed").await.len(), 30);
    stack.cleanup().await;
}

#[tokio::test]
async fn killing_payment_service_while_the_provider_holds_its_answers_repeats_no_charge() {
    let stub = ProviderStub::start().await;
    // The provider charges at once but answers the first request of each key only after
    // a minute: payment-service is killed while it waits.
    stub.set_faults(|request| {
        (request.try_of_key == 1).then_some(Fault::ApplyThenAnswerAfter(Duration::from_secs(60)))
    });
    let mut stack = with_provider(&stub, 4_000).start().await;
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
    stub.set_faults(|request| {
        (request.try_of_key == 1).then_some(Fault::Slow(Duration::from_secs(2)))
    });
    let stack = with_provider(&stub, 5_000).start().await;
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
    for event in &reserved {
        stack.broker.republish(event).await;
        stack.broker.republish(&with_new_id(event)).await;
    }
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
        .service_env(Service::Payment, "PAYMENT_RETRY_BASE_MS", "1500")
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
    // One retry loop keeps the backoff: ~1.5 s, then ~3 s (±30 % jitter).
    let gaps = [times[1] - times[0], times[2] - times[1]];
    assert!(gaps[0] >= Duration::from_millis(1_000), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(2_000), "{gaps:?}");
    assert_eq!(stub.tries_of(&format!("{id}:4")), 0);
    stub.assert_charged_once(&stack).await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_saga_that_times_out_while_the_provider_is_slow_is_refunded_exactly_once() {
    let stub = ProviderStub::start().await;
    // Charges take 6 s, longer than the saga may; the first refund request meets a 500.
    stub.set_faults(|request| match (request.kind, request.try_of_key) {
        (Kind::Charge, 1) => Some(Fault::Slow(Duration::from_secs(6))),
        (Kind::Refund, 1) => Some(Fault::ApplyThen500),
        _ => None,
    });
    let stack = with_provider(&stub, 15_000)
        .service_env(Service::Order, "SAGA_TIMEOUT_SECS", "2")
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
    for id in &ids {
        let done = stack.final_order(id).await;
        assert_eq!(done["cancellation_reason"], "TIMEOUT");
    }
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

fn items() -> Vec<LineItem> {
    vec![LineItem {
        product_id: "product-A".into(),
        quantity: Quantity::try_from(1).unwrap(),
    }]
}

#[tokio::test]
async fn batches_that_touch_two_orders_in_opposite_orders_never_deadlock() {
    let stub = ProviderStub::start().await;
    let stack = with_provider(&stub, 5_000)
        .only(&[Service::Payment])
        .replicas(Service::Payment, 2)
        .through_proxy(Service::Payment, Dependency::Database)
        .start()
        .await;
    // Both replicas frozen, the broker deals the messages out in turn: one replica gets
    // [InventoryReserved(X), OrderCancelled(Y), …], the other [InventoryReserved(Y),
    // OrderCancelled(X), …], and each applies its share as one batch.
    stack.pause(Service::Payment);
    let pairs: Vec<(Uuid, Uuid)> = (0..10).map(|_| (Uuid::new_v4(), Uuid::new_v4())).collect();
    let reserve = |order_id| {
        Event::InventoryReserved(InventoryReserved {
            order_id,
            customer_id: "c".into(),
            items: items(),
            total_amount: Money::from_decimal(12.0).unwrap(),
        })
    };
    let cancel = |order_id| {
        Event::OrderCancelled(OrderCancelled {
            order_id,
            customer_id: "c".into(),
            reason: CancellationReason::Timeout,
            items: items(),
        })
    };
    for (x, y) in &pairs {
        for event in [reserve(*x), reserve(*y), cancel(*y), cancel(*x)] {
            publish(&stack, event).await;
        }
    }
    let queue = saga_tests::contract::queue(&stack.name, Service::Payment);
    eventually(
        "the replicas to hold every message",
        Duration::from_secs(20),
        || async {
            match stack.broker.depth(&queue).await {
                0 => Ok(()),
                n => Err(format!("{n} still queued")),
            }
        },
    )
    .await;
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
    let dead = stack
        .broker
        .depth(&saga_tests::contract::dead_letter_queue(
            &stack.name,
            Service::Payment,
        ))
        .await;
    assert_eq!(dead, 0);
    stack.cleanup().await;
}

#[tokio::test]
async fn the_built_in_simulator_charges_once_and_refunds_a_cancelled_order_once() {
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .only(&[Service::Payment])
        .start()
        .await;
    let order_id = Uuid::new_v4();
    let reserved = Event::InventoryReserved(InventoryReserved {
        order_id,
        customer_id: "c".into(),
        items: items(),
        total_amount: Money::from_decimal(8.25).unwrap(),
    });
    publish(&stack, reserved.clone()).await;
    let paid = eventually("the charge", Duration::from_secs(30), || async {
        match stack.payment(&order_id.to_string()).await {
            Some(p) if p["status"] == "PROCESSED" => Ok(p),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(
        paid["charge_id"].as_str().unwrap().starts_with("ch_sim_"),
        "{paid}"
    );

    // A restart and the same reservation again, as a new message: nothing more is charged.
    stack.kill(Service::Payment).await;
    stack.restart(Service::Payment, 1).await;
    publish(&stack, reserved).await;
    let cancel = OrderCancelled {
        order_id,
        customer_id: "c".into(),
        reason: CancellationReason::Timeout,
        items: items(),
    };
    for _ in 0..2 {
        publish(&stack, Event::OrderCancelled(cancel.clone())).await;
    }
    let refunded = eventually("the refund", Duration::from_secs(30), || async {
        match stack.payment(&order_id.to_string()).await {
            Some(p) if p["status"] == "REFUNDED" => Ok(p),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(refunded["charge_id"], paid["charge_id"]);
    assert!(
        refunded["refund_id"]
            .as_str()
            .unwrap()
            .starts_with("re_sim_"),
        "{refunded}"
    );
    eventually("the events", Duration::from_secs(30), || async {
        let published = stack
            .metric_sum(Service::Payment, "messages_consumed_total")
            .await;
        let backlog = stack.outbox_backlog(Service::Payment).await;
        if published >= 3.0 && backlog == 0 {
            Ok(())
        } else {
            Err(format!("{published} consumed, {backlog} in the outbox"))
        }
    })
    .await;
    // The kill may land between a publish and its outbox row's deletion, so an event can
    // be sent twice (at least once); it is still one event.
    for event_type in ["PaymentProcessed", "PaymentRefunded"] {
        let ids: std::collections::BTreeSet<String> = stack
            .broker
            .events_of(event_type)
            .await
            .iter()
            .map(|e| e.json()["event_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 1, "{event_type}: {ids:?}");
    }
    let db = stack.db(Service::Payment).await;
    let ledger: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM simulator_charges), (SELECT count(*) FROM simulator_refunds)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(ledger, (1, 1));
    stack.cleanup().await;
}

/// Publishes an event as its publisher would (CONTRACT §4 metadata, body from `common`'s
/// types, which `payment-service` must read back).
async fn publish(stack: &TestStack, event: Event) -> String {
    let fields = serde_json::to_value(&event).expect("an event serialises");
    stack.broker.publish_event(event.name(), fields).await
}
