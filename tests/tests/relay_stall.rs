//! Publishing never waits on RabbitMQ for ever. A broker link that goes silent in the middle
//! of a batch (no reset, no close: the confirms simply never come) costs at most the broker
//! timeout (10 s): the events stay in the outbox, the link is given up, and the events go
//! out again over a fresh connection. Meanwhile `/ready` says 503.

use reqwest::StatusCode;
use saga_tests::stack::Dependency;
use saga_tests::{Service, TestStack, eventually};
use std::time::{Duration, Instant};

/// Every saga must end within this of the strike: the relay's 10 s broker timeout, a
/// reconnect, and the rest of the saga, with room for a busy machine.
const RECOVERY_BOUND: Duration = Duration::from_secs(45);

/// Outbox rows of order-service.
async fn outbox_rows(stack: &TestStack) -> i64 {
    let pool = stack.db(Service::Order).await;
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .expect("the outbox can be counted")
}

#[tokio::test]
async fn a_relay_whose_broker_link_goes_silent_mid_batch_gives_it_up_and_every_saga_ends() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        // Far beyond the bound: a saga must end by completing, not by timing out.
        .service_env(Service::Order, "SAGA_TIMEOUT_SECS", "600")
        .through_proxy(Service::Order, Dependency::Broker)
        .start()
        .await;
    let proxy = stack.proxy(Service::Order, Dependency::Broker);

    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 3.0).await);
    }
    // Publishes take turns on the channel: one still awaiting its confirm at the strike
    // would hold the turn, and the events after it would not reach the link until the
    // broker timeout. Strike once those before it are confirmed, so the next batch is the
    // one sent into the silent link.
    eventually(
        "the first orders' events to be confirmed",
        Duration::from_secs(10),
        || async {
            match outbox_rows(&stack).await {
                0 => Ok(()),
                rows => Err(format!("{rows} outbox rows")),
            }
        },
    )
    .await;
    proxy.blackhole();
    let struck = Instant::now();
    for _ in 0..5 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 3.0).await);
    }

    // The five OrderCreated events went into the silent link and wait there for confirms
    // that never come; their rows stay in the outbox.
    eventually(
        "the outbox to hold the events sent into the silent link",
        Duration::from_secs(8),
        || async {
            match outbox_rows(&stack).await {
                rows if rows >= 5 && proxy.swallowed() > 0 => Ok(()),
                rows => Err(format!(
                    "{rows} outbox rows, {} bytes swallowed",
                    proxy.swallowed()
                )),
            }
        },
    )
    .await;
    let pending = {
        let mut pending = 0;
        for order in &orders[3..] {
            if stack.order(order["id"].as_str().unwrap()).await["status"] == "PENDING" {
                pending += 1;
            }
        }
        pending
    };
    assert_eq!(pending, 5, "orders placed after the strike are all PENDING");

    // While the events hang, the service does not claim to be ready.
    let detail = eventually(
        "order-service /ready to report the stuck publish",
        Duration::from_secs(30),
        || async {
            match stack.get_json(Service::Order, "/ready").await {
                (StatusCode::SERVICE_UNAVAILABLE, body) => Ok(body["detail"].to_string()),
                (status, body) => Err(format!("{status} {body}")),
            }
        },
    )
    .await;
    assert!(detail.contains("outbox"), "{detail}");

    for order in &orders {
        let id = order["id"].as_str().unwrap();
        assert_eq!(stack.final_order(id).await["status"], "COMPLETED", "{id}");
    }
    let recovered = struck.elapsed();
    assert!(
        recovered < RECOVERY_BOUND,
        "every saga ended {recovered:?} after the strike, beyond {RECOVERY_BOUND:?}"
    );
    assert!(
        stack
            .logs(Service::Order)
            .contains("gave up on the broker link"),
        "the service says what it did"
    );
    stack.assert_invariants().await;
    stack.cleanup().await;
}
