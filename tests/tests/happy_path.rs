//! The flows of the original system's walkthrough.

use saga_tests::{Service, TestStack};

#[tokio::test]
async fn an_order_in_stock_and_paid_completes_and_keeps_its_stock_reserved() {
    let stack = TestStack::start().await;

    let order = stack
        .place_order("customer-123", &[("product-A", 2), ("product-B", 1)], 150.0)
        .await;
    assert_eq!(order["status"], "PENDING");
    let id = order["id"].as_str().unwrap();

    let done = stack.final_order(id).await;
    assert_eq!(done["status"], "COMPLETED");
    assert_eq!(done["cancellation_reason"], serde_json::Value::Null);

    let stock = stack.stock().await;
    assert_eq!(stock["product-A"], (8, 2));
    assert_eq!(stock["product-B"], (4, 1));
    let payment = stack.payment(id).await.expect("a payment");
    assert_eq!(payment["status"], "PROCESSED");
    assert_eq!(payment["amount"], 150.0);
    assert_eq!(payment["attempts"], 1);
    assert_eq!(
        stack.timeline(id).await,
        ["OrderCreated", "PaymentProcessed", "OrderConfirmed"]
    );

    stack.assert_invariants().await;
    let notifications = stack.notifications(id).await;
    assert!(
        notifications.contains(&"PaymentProcessed".to_owned()),
        "{notifications:?}"
    );
    stack.cleanup().await;
}

#[tokio::test]
async fn an_order_for_product_c_is_cancelled_as_unavailable() {
    let stack = TestStack::start().await;

    let order = stack
        .place_order("customer-123", &[("product-C", 1)], 10.0)
        .await;
    let done = stack.final_order(order["id"].as_str().unwrap()).await;

    assert_eq!(done["status"], "CANCELLED");
    assert_eq!(done["cancellation_reason"], "INVENTORY_UNAVAILABLE");
    assert_eq!(stack.payment(order["id"].as_str().unwrap()).await, None);
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn an_order_with_one_missing_product_reserves_none_of_the_others() {
    let stack = TestStack::start().await;

    let order = stack
        .place_order("customer-123", &[("product-A", 3), ("product-C", 1)], 40.0)
        .await;
    let done = stack.final_order(order["id"].as_str().unwrap()).await;

    assert_eq!(done["cancellation_reason"], "INVENTORY_UNAVAILABLE");
    assert_eq!(stack.stock().await["product-A"], (10, 0));
    let unavailable = stack.broker.events_of("InventoryUnavailable").await;
    assert_eq!(
        unavailable[0].json()["items"],
        serde_json::json!([{"product_id": "product-C", "requested": 1, "available": 0}])
    );
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn an_unknown_product_is_unavailable() {
    let stack = TestStack::start().await;

    let order = stack
        .place_order("customer-9", &[("no-such-product", 1)], 5.5)
        .await;
    let done = stack.final_order(order["id"].as_str().unwrap()).await;

    assert_eq!(done["status"], "CANCELLED");
    assert_eq!(done["cancellation_reason"], "INVENTORY_UNAVAILABLE");
    assert!(!stack.stock().await.contains_key("no-such-product"));
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn the_same_product_twice_in_one_order_is_reserved_as_the_sum() {
    let stack = TestStack::start().await;

    let fits = stack
        .place_order("c", &[("product-B", 2), ("product-B", 3)], 50.0)
        .await;
    assert_eq!(
        stack.final_order(fits["id"].as_str().unwrap()).await["status"],
        "COMPLETED"
    );
    assert_eq!(stack.stock().await["product-B"], (0, 5));

    let too_many = stack
        .place_order("c", &[("product-A", 6), ("product-A", 5)], 50.0)
        .await;
    let done = stack.final_order(too_many["id"].as_str().unwrap()).await;
    assert_eq!(done["cancellation_reason"], "INVENTORY_UNAVAILABLE");
    assert_eq!(stack.stock().await["product-A"], (10, 0));
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn each_event_carries_the_contract_metadata() {
    let stack = TestStack::start().await;
    let paid = stack
        .place_order("customer-123", &[("product-A", 1)], 15.0)
        .await;
    let unavailable = stack
        .place_order("customer-123", &[("product-C", 1)], 15.0)
        .await;
    stack.final_order(paid["id"].as_str().unwrap()).await;
    stack.final_order(unavailable["id"].as_str().unwrap()).await;
    stack.assert_invariants().await;

    let types = stack.assert_event_metadata().await;
    for expected in [
        "OrderCreated",
        "InventoryReserved",
        "InventoryUnavailable",
        "PaymentProcessed",
        "OrderConfirmed",
        "OrderCancelled",
    ] {
        assert!(types.contains(expected), "no {expected} in {types:?}");
    }
    stack.cleanup().await;
}

#[tokio::test]
async fn each_service_logs_its_part_with_the_order_id() {
    let stack = TestStack::start().await;
    let order = stack
        .place_order("customer-123", &[("product-A", 1)], 15.0)
        .await;
    let id = order["id"].as_str().unwrap();
    stack.final_order(id).await;
    stack.assert_invariants().await;

    for (service, expected) in [
        (Service::Order, "published OrderCreated"),
        (Service::Inventory, "reserved stock"),
        (Service::Payment, "payment processed"),
        (Service::Order, "order COMPLETED"),
        (Service::Notification, "notification sent"),
    ] {
        let logs = stack.logs(service);
        let line = logs
            .lines()
            .find(|line| line.contains(expected) && line.contains(id));
        assert!(
            line.is_some(),
            "{} logged no {expected:?} line for {id}",
            service.name()
        );
    }
    stack.cleanup().await;
}
