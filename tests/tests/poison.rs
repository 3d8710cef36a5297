//! Messages that cannot be handled go to the dead-letter queue — at once when they cannot
//! be parsed, after bounded, growing retries when the failure may pass — while the service
//! keeps consuming; an operator can inspect and replay them.

use reqwest::{Method, StatusCode};
use saga_tests::{Service, TestStack, eventually};
use serde_json::Value;
use std::time::Duration;

async fn dead_letters(stack: &TestStack, service: Service) -> Value {
    let response = stack
        .admin(Method::GET, service, "/admin/dlq")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn wait_for_depth(stack: &TestStack, service: Service, depth: u64) {
    eventually(
        &format!("{} dead letters in {}", depth, service.name()),
        Duration::from_secs(30),
        || async {
            match dead_letters(stack, service).await["depth"].as_u64() {
                Some(found) if found == depth => Ok(()),
                found => Err(format!("depth {found:?}")),
            }
        },
    )
    .await;
}

#[tokio::test]
async fn unparseable_messages_are_dead_lettered_at_once_while_good_orders_complete() {
    let mut stack = TestStack::start().await;
    let not_json = stack
        .broker
        .publish_poison("order.created", b"not json at all")
        .await;
    let bad_id = stack
        .broker
        .publish_poison(
            "order.cancelled",
            br#"{"event_type": "OrderCancelled", "order_id": "nope"}"#,
        )
        .await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 5.0).await);
    }
    for order in &orders {
        assert_eq!(
            stack.final_order(order["id"].as_str().unwrap()).await["status"],
            "COMPLETED"
        );
    }

    wait_for_depth(&stack, Service::Inventory, 2).await;
    let letters = dead_letters(&stack, Service::Inventory).await;
    for letter in letters["messages"].as_array().unwrap() {
        assert_eq!(letter["attempts"], 1, "{letter}");
        assert!(
            letter["error"].as_str().unwrap().contains("cannot parse"),
            "{letter}"
        );
    }
    // Handled concurrently, the two may be dead-lettered in either order.
    let not_json_letter = letters["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|letter| letter["body"] == "not json at all")
        .expect("the unparseable body is kept as it was");
    assert_eq!(not_json_letter["routing_key"], "order.created");
    // Each consumer of order.cancelled dead-letters its own copy of the bad one.
    stack
        .expected_dead_letters
        .insert(Service::Inventory, vec![not_json, bad_id.clone()]);
    stack
        .expected_dead_letters
        .insert(Service::Payment, vec![bad_id.clone()]);
    stack
        .expected_dead_letters
        .insert(Service::Notification, vec![bad_id]);
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_failing_handler_is_retried_with_delays_then_dead_lettered_and_can_be_replayed() {
    let stack = TestStack::start().await;
    stack
        .refuse_inserts(Service::Notification, "notifications")
        .await;

    let order = stack.place_order("c", &[("product-A", 1)], 5.0).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(stack.final_order(id).await["status"], "COMPLETED");

    // PaymentProcessed and OrderConfirmed: each tried once and retried three times.
    wait_for_depth(&stack, Service::Notification, 2).await;
    let letters = dead_letters(&stack, Service::Notification).await;
    for letter in letters["messages"].as_array().unwrap() {
        assert_eq!(letter["attempts"], 4, "{letter}");
        assert!(
            letter["error"]
                .as_str()
                .unwrap()
                .contains("injected failure"),
            "{letter}"
        );
    }
    assert_eq!(
        stack
            .metric_sum(Service::Notification, "messages_retried_total")
            .await,
        6.0
    );
    let logs = stack.logs(Service::Notification);
    assert!(
        logs.contains("will retry") && logs.contains("dead-lettering"),
        "no retry in the log"
    );

    stack
        .accept_inserts(Service::Notification, "notifications")
        .await;
    let response = stack
        .admin(Method::POST, Service::Notification, "/admin/dlq/replay")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["replayed"], 2);

    stack.assert_invariants().await;
    assert_eq!(
        stack.notifications(id).await,
        ["PaymentProcessed", "OrderConfirmed"]
    );
    stack.cleanup().await;
}
