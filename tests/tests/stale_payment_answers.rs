//! CONTRACT §7 and §5 (exactly-once effect): a provider answer that outlived its worker's
//! lease changes nothing and publishes nothing — even when it is recorded in the same
//! group as the answer of the worker that claimed the row again (issue 31, item 1).
//!
//! The recorder writes answers one group at a time. The test holds one group mid-statement
//! (its `PROCESSED`, later its `REFUNDED`, write waiting for the test's lock:
//! [`TestStack::hold_writes`]) for longer than a lease, so the answers that arrive meanwhile
//! queue up behind it. Their rows' leases run out, the worker claims them again and asks
//! the provider again under the same keys, and the provider's stored answers queue up too.
//! Let go, the recorder meets each row's stale answer and its current one in one group:
//! only the current one may count. Nothing races a clock: the test waits for the provider
//! to have been asked twice and for every answer to have reached the recorder.
//!
//! (A delay on payment-service's database link, through the test proxy, was the first
//! idea; but the worker's claims share that link and that pool, so a delay long enough to
//! hold the recorder past a lease slows the claims that must overtake it as much, and the
//! outcome would hang on timing. The held write holds the recorder alone.)

use saga_tests::provider_stub::{Fault, Kind, ProviderStub};
use saga_tests::{Service, TestStack, eventually};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// A provider call gives up after 1 s, so a claimed row's lease is 6 s.
const PROVIDER_TIMEOUT_MS: &str = "1000";
/// Longer than the test keeps any order waiting; the test cancels W and Z itself
/// ([`TestStack::expire`]), at the sweeper's next look (a quarter of this).
const SAGA_TIMEOUT_SECS: &str = "40";

fn id_of(order: &Value) -> String {
    order["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_answer_that_outlived_its_lease_publishes_nothing_beside_the_current_one() {
    let stub = ProviderStub::start().await;
    let stack = TestStack::builder()
        .service_env(Service::Payment, "PAYMENT_PROVIDER_URL", &stub.url())
        .service_env(
            Service::Payment,
            "PAYMENT_PROVIDER_TIMEOUT_MS",
            PROVIDER_TIMEOUT_MS,
        )
        .service_env(Service::Order, "SAGA_TIMEOUT_SECS", SAGA_TIMEOUT_SECS)
        .start()
        .await;
    // Both holds are in place before any payment: adding one later would wait for the
    // group the other holds.
    let charges = stack
        .hold_writes(
            Service::Payment,
            "payments",
            "UPDATE",
            "OLD.status = 'PENDING' AND NEW.status = 'PROCESSED'",
        )
        .await;
    let refunds = stack
        .hold_writes(
            Service::Payment,
            "payments",
            "UPDATE",
            "OLD.status = 'PROCESSED' AND NEW.status = 'REFUNDED'",
        )
        .await;

    // Charges: the recorder is held on X's answer; Y's, W's and Z's queue behind it, go
    // stale, are asked again and queue again. W and Z time out meanwhile.
    let x = id_of(&stack.place_order("x", &[("product-A", 1)], 5.0).await);
    charges.await_waiting(1).await;
    let mut others = Vec::new();
    for customer in ["y", "w", "z"] {
        let order = stack.place_order(customer, &[("product-A", 1)], 6.0).await;
        others.push(id_of(&order));
    }
    let [y, w, z] = <[String; 3]>::try_from(others.clone()).unwrap();
    // W's first refund request answers a moment late, so W's and Z's refunds reach the
    // recorder one after the other, whatever the claims that start them.
    let slow_refund = format!("{w}:refund");
    stub.set_faults(move |request| {
        (request.kind == Kind::Refund && request.key == slow_refund && request.try_of_key == 1)
            .then_some(Fault::Slow(Duration::from_millis(300)))
    });
    let first_keys: Vec<String> = others.iter().map(|id| format!("{id}:1")).collect();
    // Charged before they time out: a cancellation first would leave nothing to charge.
    wait_for_tries(&stub, &first_keys, 1).await;
    stack.expire(&[w.clone(), z.clone()]).await;
    for id in [&w, &z] {
        assert_eq!(stack.final_order(id).await["status"], "CANCELLED");
    }
    wait_for_tries(&stub, &first_keys, 2).await;
    // X's, then Y's, W's and Z's twice.
    wait_for_answers(&stack, 7.0).await;
    assert_eq!(
        charges.waiting().await.len(),
        1,
        "X's group was let go early"
    );
    assert_eq!(stack.order(&y).await["status"], "PENDING");
    charges.release().await;

    // Refunds: W's and Z's are due once their charges are recorded. The first answer to
    // reach the recorder is held; the other's queues behind it, goes stale, is asked again
    // and queues again.
    assert_eq!(stack.final_order(&x).await["status"], "COMPLETED");
    assert_eq!(stack.final_order(&y).await["status"], "COMPLETED");
    refunds.await_waiting(1).await;
    eventually(
        "the provider to be asked twice for the refund held back",
        Duration::from_secs(60),
        || async {
            let mut tries = [
                stub.tries_of(&format!("{w}:refund")),
                stub.tries_of(&format!("{z}:refund")),
            ];
            tries.sort();
            if tries == [1, 2] {
                Ok(())
            } else {
                Err(format!("tries of W's and Z's refunds: {tries:?}"))
            }
        },
    )
    .await;
    wait_for_answers(&stack, 10.0).await;
    assert_eq!(
        refunds.waiting().await.len(),
        1,
        "the refund was let go early"
    );
    refunds.release().await;

    for id in [&w, &z] {
        eventually("the refund", Duration::from_secs(30), || async {
            match stack.payment(id).await {
                Some(p) if p["status"] == "REFUNDED" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }
    // Whatever was written is out of the outbox: every copy of every event is on the bus.
    eventually("an empty outbox", Duration::from_secs(30), || async {
        match stack.outbox_backlog(Service::Payment).await {
            0 => Ok(()),
            left => Err(format!("{left} events in payment-service's outbox")),
        }
    })
    .await;

    // Every delivery the tap received, not one per event id: a second event of the same
    // payment carries an id of its own, and no inbox knows it for a repeat.
    let mut published: BTreeMap<(String, String), usize> = BTreeMap::new();
    for event in stack.broker.deliveries().await {
        let kind = event.event_type();
        if kind == "PaymentProcessed" || kind == "PaymentRefunded" {
            *published.entry((kind, event.order_id())).or_default() += 1;
        }
    }
    let mut expected = BTreeMap::new();
    for id in [&x, &y, &w, &z] {
        expected.insert(("PaymentProcessed".to_owned(), id.clone()), 1);
    }
    for id in [&w, &z] {
        expected.insert(("PaymentRefunded".to_owned(), id.clone()), 1);
    }
    assert_eq!(published, expected, "payment events on the bus, per order");
    let stale = stack
        .logs(Service::Payment)
        .matches("lease lost meanwhile")
        .count();
    assert_eq!(
        stale, 4,
        "the stale answers of Y, W and Z's charges and one refund"
    );
    assert_eq!(stub.refunds().len(), 2);
    // The §6 checker, then the provider's ledger against every order.
    stub.assert_charged_once(&stack).await;
    stack.cleanup().await;
}

/// Waits until each of `keys` was asked `tries` times.
async fn wait_for_tries(stub: &ProviderStub, keys: &[String], tries: usize) {
    eventually(
        "the provider to be asked again under the same keys",
        Duration::from_secs(60),
        || async {
            let asked: Vec<usize> = keys.iter().map(|key| stub.tries_of(key)).collect();
            if asked.iter().all(|n| *n == tries) {
                Ok(())
            } else {
                Err(format!("tries of {keys:?}: {asked:?}"))
            }
        },
    )
    .await;
}

/// Waits until payment-service counted `calls` provider calls in all. A call is counted
/// once its answer is back, and the answer goes to the recorder in the same step without
/// waiting: every answer counted is in the recorder's queue.
async fn wait_for_answers(stack: &TestStack, calls: f64) {
    eventually(
        "every provider answer to reach the recorder",
        Duration::from_secs(30),
        || async {
            let counted = stack
                .metric_sum(Service::Payment, "payment_provider_requests_total")
                .await;
            if counted == calls {
                Ok(())
            } else {
                Err(format!("{counted} provider calls counted"))
            }
        },
    )
    .await;
}
