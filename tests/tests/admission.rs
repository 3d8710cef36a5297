//! The admission bound follows the system (issue 35): as many orders are taken as the
//! system finishes in the target time of a saga (`ADMISSION_TARGET_MS`), never more than
//! `MAX_PENDING_ORDERS`, and a turned-away POST is told when to come back.

use reqwest::StatusCode;
use saga_tests::api::order_body;
use saga_tests::{Service, TestStack, eventually};
use serde_json::Value;
use std::time::Duration;

const CEILING: usize = 1_000;
/// `intake::limit::FLOOR`: the least the bound goes down to.
const FLOOR: f64 = 128.0;

/// Posts with `concurrency` POSTs in flight until the first 503 or `CEILING` orders;
/// returns the orders created and the refusal, if one came.
async fn post_until_refused(
    stack: &TestStack,
    concurrency: usize,
) -> (usize, Option<(Value, String)>) {
    let body = order_body("customer-admission", &[("product-A", 1)], 10.0);
    let mut created = 0;
    while created < CEILING {
        let posts = (0..concurrency).map(|_| async {
            let response = stack
                .http
                .post(stack.url(Service::Order, "/api/orders"))
                .json(&body)
                .send()
                .await
                .expect("order-service answers");
            let status = response.status();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            (status, answer, retry_after)
        });
        let mut refused = None;
        for (status, answer, retry_after) in futures_util::future::join_all(posts).await {
            match status {
                StatusCode::CREATED => created += 1,
                StatusCode::SERVICE_UNAVAILABLE => refused = Some((answer, retry_after)),
                other => panic!("POST answered {other}: {answer}"),
            }
        }
        if refused.is_some() {
            return (created, refused);
        }
    }
    (created, None)
}

/// Sagas that stop finishing (no inventory-service: every order stays `PENDING`, its age
/// growing) are a system that finishes nothing in time: the bound falls from the ceiling
/// to its floor, and POSTs are turned away with a `Retry-After` before 1,000 orders wait.
/// With the bound fixed at `MAX_PENDING_ORDERS` (the behaviour before, and
/// `ADMISSION_TARGET_MS=0` now) all 1,000 are taken.
///
/// How many are taken before the first 503 depends on how fast this machine posts against
/// how often order-service counts (511 in a busy CI run, 576–665 on a quiet 2-core box), so
/// it is asserted only to lie between the floor and the ceiling; how far the bound falls
/// is asserted exactly: to its floor, where the next POST is refused.
#[tokio::test]
async fn when_sagas_stop_finishing_the_bound_falls_far_below_max_pending_orders() {
    let stack = TestStack::builder()
        .only(&[Service::Order])
        .service_env(Service::Order, "MAX_PENDING_ORDERS", &CEILING.to_string())
        .service_env(Service::Order, "ADMISSION_TARGET_MS", "500")
        .start()
        .await;
    let (created, refused) = post_until_refused(&stack, 8).await;
    let (answer, retry_after) = refused.unwrap_or_else(|| {
        panic!("{created} orders were taken while no saga finished: the bound did not move")
    });
    assert!(
        (FLOOR as usize..CEILING).contains(&created),
        "{created} orders taken before the first 503: a burst up to the floor is always taken"
    );
    let detail = answer["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("MAX_PENDING_ORDERS"), "{answer}");
    let seconds: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {retry_after:?} is not whole seconds"));
    assert!((1..=30).contains(&seconds), "Retry-After {seconds}");
    eventually(
        "the bound at its floor",
        Duration::from_secs(20),
        || async {
            let bound = stack
                .metric_sum(Service::Order, "orders_pending_bound")
                .await;
            if bound == FLOOR {
                Ok(())
            } else {
                Err(format!("the bound is {bound}"))
            }
        },
    )
    .await;
    // Every order taken is still PENDING, more than the floor: the next POST is refused.
    let (after, refused) = post_until_refused(&stack, 1).await;
    assert_eq!(after, 0, "a POST was taken with the bound at its floor");
    assert!(refused.is_some());
    stack.cleanup().await;
}

/// The same stall with the bound fixed (`ADMISSION_TARGET_MS=0`): every order up to
/// `MAX_PENDING_ORDERS` is taken — what the test above would see if the bound did not follow
/// the system.
#[tokio::test]
async fn with_the_target_off_the_bound_is_max_pending_orders() {
    let stack = TestStack::builder()
        .only(&[Service::Order])
        .service_env(Service::Order, "MAX_PENDING_ORDERS", "300")
        .service_env(Service::Order, "ADMISSION_TARGET_MS", "0")
        .start()
        .await;
    let (created, refused) = post_until_refused(&stack, 8).await;
    assert_eq!(created, 300, "{refused:?}");
    stack.cleanup().await;
}
