//! `POST /api/orders` under contention and stalls (CONTRACT §9): a 5xx means nothing was
//! created, and one request's trouble does not fail the orders written beside it.

use futures_util::future::join_all;
use reqwest::StatusCode;
use saga_tests::api::order_body;
use saga_tests::stack::Dependency;
use saga_tests::{Service, TestStack, eventually};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

async fn post(
    stack: &TestStack,
    addr: SocketAddr,
    key: Option<&str>,
    body: &Value,
) -> (StatusCode, Value) {
    let mut request = stack
        .http
        .post(format!("http://{addr}/api/orders"))
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("order-service answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The `orders_pending` gauge of one replica: its last count of PENDING orders.
async fn pending_counted(stack: &TestStack, replica: SocketAddr) -> Option<f64> {
    let text = stack
        .http
        .get(format!("http://{replica}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("orders_pending "))
        .and_then(|value| value.trim().parse().ok())
}

/// Orders of one customer, counted in order-service's database.
async fn orders_of(stack: &TestStack, customer: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders WHERE customer_id = $1")
        .bind(customer)
        .fetch_one(&stack.db(Service::Order).await)
        .await
        .expect("orders can be counted")
}

#[tokio::test]
async fn two_replicas_taking_the_same_keys_in_opposite_orders_answer_every_post() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        // 1,000 orders arrive faster than their sagas end; this test is about contended
        // keys, not about shedding load (past_max_pending_orders… below is).
        .service_env(Service::Order, "MAX_PENDING_ORDERS", "100000")
        .service_env(Service::Order, "ADMISSION_TARGET_MS", "0")
        .replicas(Service::Order, 2)
        .start()
        .await;
    let replicas: Vec<SocketAddr> = stack
        .instances(Service::Order)
        .iter()
        .map(|i| i.addr)
        .collect();
    const ROUNDS: usize = 10;
    const KEYS: usize = 100;
    let customer = "customer-contended";
    let body = order_body(customer, &[("product-A", 1)], 10.0);

    let mut ids: HashMap<String, Value> = HashMap::new();
    for round in 0..ROUNDS {
        let keys: Vec<String> = (0..KEYS)
            .map(|k| format!("round-{round}-key-{k:02}"))
            .collect();
        // Replica 0 gets the keys in ascending order, replica 1 in descending order, all
        // at once: their group commits insert the same keys in opposite orders.
        let forward = keys
            .iter()
            .map(|key| post(&stack, replicas[0], Some(key), &body));
        let backward = keys
            .iter()
            .rev()
            .map(|key| post(&stack, replicas[1], Some(key), &body));
        let (forward, backward) = tokio::join!(join_all(forward), join_all(backward));
        let answers = keys
            .iter()
            .zip(&forward)
            .chain(keys.iter().rev().zip(&backward));
        for (key, (status, order)) in answers {
            assert!(
                matches!(*status, StatusCode::CREATED | StatusCode::OK),
                "{key}: {status} {order}"
            );
            let id = &order["id"];
            let first = ids.entry(key.clone()).or_insert_with(|| id.clone());
            assert_eq!(first, id, "{key} made two orders");
        }
    }

    assert_eq!(orders_of(&stack, customer).await, (ROUNDS * KEYS) as i64);
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_post_given_up_while_the_database_stalls_is_never_written() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .through_proxy(Service::Order, Dependency::Database)
        .start()
        .await;
    let order = stack
        .place_order("customer-before", &[("product-A", 1)], 10.0)
        .await;
    stack.final_order(order["id"].as_str().unwrap()).await;

    // Every byte between order-service and PostgreSQL now takes 1.5 s each way: the order's
    // transaction would finish long after any sensible answer.
    let proxy = stack.proxy(Service::Order, Dependency::Database);
    proxy.set_delay(Duration::from_millis(1500));
    let started = Instant::now();
    let response = stack
        .http
        .post(stack.url(Service::Order, "/api/orders"))
        .json(&order_body("customer-stalled", &[("product-A", 1)], 10.0))
        .send()
        .await
        .expect("order-service answers before the client's own timeout");
    let status = response.status();
    let retry_after = response.headers().get("retry-after").cloned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["detail"].is_string(), "a 503 says why: {body}");
    assert!(retry_after.is_some(), "a 503 says when to retry");
    assert!(
        started.elapsed() < Duration::from_secs(14),
        "{:?}",
        started.elapsed()
    );

    // The link heals. order-service writes orders one batch after another, so once a later
    // order is written, whatever happened to the stalled one has happened.
    proxy.set_delay(Duration::ZERO);
    let later = eventually(
        "an order to be written after the stall",
        Duration::from_secs(90),
        || async {
            match stack
                .post_order_raw(&order_body("customer-after", &[("product-A", 1)], 10.0))
                .await
            {
                (StatusCode::CREATED, order) => Ok(order),
                (status, body) => Err(format!("{status} {body}")),
            }
        },
    )
    .await;
    stack.final_order(later["id"].as_str().unwrap()).await;

    assert_eq!(
        orders_of(&stack, "customer-stalled").await,
        0,
        "the POST answered 503, yet its order was written"
    );
    stack.assert_invariants().await;
    stack.cleanup().await;
}

/// On one replica the bound is exact (a place is reserved before a request is queued,
/// and orders it created since the last count are added to it): with `MAX_PENDING_ORDERS`
/// 3, the fourth POST is shed at once — right after the third, with no count in between —
/// and so is every POST after it, while nothing moves on.
#[tokio::test]
async fn past_max_pending_orders_a_post_is_shed_at_once_and_creates_nothing() {
    // Without inventory-service nothing moves on: every order stays PENDING.
    let stack = TestStack::builder()
        .only(&[Service::Order])
        .service_env(Service::Order, "MAX_PENDING_ORDERS", "3")
        .start()
        .await;
    let body = order_body("customer-shed", &[("product-A", 1)], 10.0);
    for _ in 0..3 {
        stack
            .place_order("customer-shed", &[("product-A", 1)], 10.0)
            .await;
    }
    let shed = |concurrent: usize| {
        let posts = (0..concurrent).map(|_| async {
            let started = Instant::now();
            let response = stack
                .http
                .post(stack.url(Service::Order, "/api/orders"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let retry_after = response.headers().contains_key("retry-after");
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
            assert!(answer["detail"].is_string(), "{answer}");
            assert!(retry_after, "a shed POST says when to retry");
            assert!(started.elapsed() < Duration::from_secs(2), "shed at once");
        });
        join_all(posts)
    };
    shed(1).await;
    // Past the next counts too, and however many arrive at once.
    shed(20).await;
    assert_eq!(orders_of(&stack, "customer-shed").await, 3);
    stack.cleanup().await;
}

/// The bound is exact (issue 21): a place is reserved before a request is queued, so 500
/// POSTs arriving at once, 10 places below `MAX_PENDING_ORDERS`, create 10 orders per
/// replica of order-service at most — here two replicas, so at most 20 — and every other
/// POST is shed with 503 and creates nothing. A repeated key takes no place.
#[tokio::test]
async fn five_hundred_concurrent_posts_ten_places_below_the_bound_create_at_most_ten_per_replica() {
    const BOUND: usize = 40;
    const FREE: usize = 10;
    let stack = TestStack::builder()
        .service_env(Service::Order, "MAX_PENDING_ORDERS", &BOUND.to_string())
        .replicas(Service::Order, 2)
        .start()
        .await;
    // Nothing moves on: every order placed stays PENDING and holds its place.
    stack.pause(Service::Inventory);
    let replicas: Vec<SocketAddr> = stack
        .instances(Service::Order)
        .iter()
        .map(|i| i.addr)
        .collect();
    let customer = "customer-bound";
    let body = order_body(customer, &[("product-A", 1)], 10.0);
    for i in 0..BOUND - FREE {
        let (status, order) =
            post(&stack, replicas[i % 2], Some(&format!("first-{i}")), &body).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
    }
    // A repeat of a key already used takes no place, however often it comes.
    for _ in 0..20 {
        let (status, _) = post(&stack, replicas[0], Some("first-0"), &body).await;
        assert_eq!(status, StatusCode::OK);
    }
    // Both replicas have counted the PENDING orders (they count a few times a second), so
    // each knows of the other's: each has FREE places left.
    for replica in &replicas {
        eventually(
            &format!("{replica} to count {} PENDING orders", BOUND - FREE),
            Duration::from_secs(10),
            || async {
                match pending_counted(&stack, *replica).await {
                    Some(n) if n == (BOUND - FREE) as f64 => Ok(()),
                    other => Err(format!("orders_pending {other:?}")),
                }
            },
        )
        .await;
    }

    let posts = (0..500).map(|i| post(&stack, replicas[i % 2], None, &body));
    let answers = join_all(posts).await;
    // The bound is exact per replica: each creates FREE at most; together at least FREE.
    let created_at = |replica: usize| {
        answers
            .iter()
            .enumerate()
            .filter(|(i, (status, _))| i % 2 == replica && *status == StatusCode::CREATED)
            .count()
    };
    let per_replica = [created_at(0), created_at(1)];
    assert!(
        per_replica.iter().all(|n| *n <= FREE),
        "created per replica {per_replica:?} with {FREE} places free"
    );
    let created = per_replica[0] + per_replica[1];
    for (status, answer) in &answers {
        assert!(
            matches!(
                *status,
                StatusCode::CREATED | StatusCode::SERVICE_UNAVAILABLE
            ),
            "{status} {answer}"
        );
    }
    assert!(
        (FREE..=2 * FREE).contains(&created),
        "{created} of 500 created with {FREE} places free (two replicas)"
    );
    assert_eq!(
        orders_of(&stack, customer).await,
        (BOUND - FREE + created) as i64,
        "a shed POST created nothing"
    );

    stack.resume(Service::Inventory);
    stack.assert_invariants().await;
    stack.cleanup().await;
}
