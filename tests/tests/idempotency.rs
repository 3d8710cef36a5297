//! A client may retry `POST /api/orders` safely with an `Idempotency-Key`.

use reqwest::StatusCode;
use saga_tests::api::order_body;
use saga_tests::{Service, TestStack};
use serde_json::Value;

async fn post_with_key(stack: &TestStack, key: &str, body: &Value) -> (StatusCode, Value) {
    let response = stack
        .http
        .post(stack.url(Service::Order, "/api/orders"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_retried_post_with_the_same_key_returns_the_first_order() {
    let stack = TestStack::start().await;
    let body = order_body("customer-1", &[("product-A", 1)], 10.0);

    let (first_status, first) = post_with_key(&stack, "key-1", &body).await;
    let (again_status, again) = post_with_key(&stack, "key-1", &body).await;

    assert_eq!(first_status, StatusCode::CREATED);
    assert_eq!(again_status, StatusCode::OK);
    assert_eq!(again["id"], first["id"]);
    stack.final_order(first["id"].as_str().unwrap()).await;
    stack.assert_invariants().await;
    assert_eq!(stack.all_orders().await.len(), 1);
    assert_eq!(stack.broker.events_of("OrderCreated").await.len(), 1);
    stack.cleanup().await;
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_conflict() {
    let stack = TestStack::start().await;
    let (status, _) =
        post_with_key(&stack, "key-2", &order_body("c", &[("product-A", 1)], 10.0)).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, answer) =
        post_with_key(&stack, "key-2", &order_body("c", &[("product-A", 2)], 10.0)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
    assert_eq!(stack.all_orders().await.len(), 1);
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn concurrent_retries_with_one_key_create_one_order() {
    let stack = TestStack::start().await;
    let body = order_body("c", &[("product-A", 1)], 10.0);
    let answers =
        futures_util::future::join_all((0..10).map(|_| post_with_key(&stack, "key-3", &body)))
            .await;

    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|(_, order)| order["id"].clone())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    let created = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_key_is_its_customers_own_so_another_customer_with_the_same_key_gets_a_new_order() {
    let stack = TestStack::start().await;
    let alices = order_body("customer-alice", &[("product-A", 1)], 10.0);
    let bobs = order_body("customer-bob", &[("product-A", 1)], 10.0);

    let (status, alice_first) = post_with_key(&stack, "shared-key", &alices).await;
    assert_eq!(status, StatusCode::CREATED, "{alice_first}");
    // Not a 409: that would tell bob the key is in use, and let him take alice's keys.
    let (status, bob_first) = post_with_key(&stack, "shared-key", &bobs).await;
    assert_eq!(status, StatusCode::CREATED, "{bob_first}");
    assert_ne!(bob_first["id"], alice_first["id"]);
    assert_eq!(bob_first["customer_id"], "customer-bob");

    // Each customer's retry still finds its own order, and a changed body still conflicts.
    for (body, first) in [(&alices, &alice_first), (&bobs, &bob_first)] {
        let (status, again) = post_with_key(&stack, "shared-key", body).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["id"], first["id"]);
    }
    let changed = order_body("customer-bob", &[("product-A", 2)], 10.0);
    let (status, answer) = post_with_key(&stack, "shared-key", &changed).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");

    for first in [&alice_first, &bob_first] {
        stack.final_order(first["id"].as_str().unwrap()).await;
    }
    assert_eq!(stack.all_orders().await.len(), 2);
    assert_eq!(stack.broker.events_of("OrderCreated").await.len(), 2);
    stack.assert_invariants().await;
    stack.cleanup().await;
}
