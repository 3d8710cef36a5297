//! The HTTP lines of CONTRACT §2–§3 no flow test reaches: listing and filtering orders,
//! the saga timeline's fields, notification fields, one product's stock.

use futures_util::future::join_all;
use reqwest::StatusCode;
use saga_tests::{Service, TestStack};
use serde_json::Value;

/// `2025-12-16T10:00:00.000000`: UTC, microseconds, no offset (§2).
fn is_contract_time(text: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.6f").is_ok()
        && text.len() == "2025-12-16T10:00:00.000000".len()
}

fn ids(orders: &[Value]) -> Vec<String> {
    orders
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn orders_are_listed_newest_first_filtered_and_paged() {
    let stack = TestStack::start().await;
    // 3 orders of alice that complete, then 50 of bob for product C that are cancelled.
    let mut placed = Vec::new();
    for _ in 0..3 {
        placed.push(stack.place_order("alice", &[("product-A", 1)], 2.0).await);
    }
    placed.extend(
        join_all((0..50).map(|_| stack.place_order("bob", &[("product-C", 1)], 1.0))).await,
    );
    stack.final_orders(&placed).await;
    stack.assert_invariants().await;

    let list = |query: &'static str| {
        let stack = &stack;
        async move {
            stack
                .get_list(Service::Order, &format!("/api/orders{query}"))
                .await
                .unwrap()
        }
    };
    // Newest first: created_at never increases down the list, and the first three
    // placed (alice's, placed one after another before bob's) come last.
    let everything = list("?limit=500").await;
    assert_eq!(everything.len(), 53);
    let times: Vec<&str> = everything
        .iter()
        .map(|o| o["created_at"].as_str().unwrap())
        .collect();
    assert!(times.iter().all(|t| is_contract_time(t)), "{times:?}");
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let alice_in_order: Vec<String> = ids(&placed[..3]).into_iter().rev().collect();
    assert_eq!(ids(&everything[50..]), alice_in_order);

    // Default limit 50; offset pages on from there.
    let first_page = list("").await;
    assert_eq!(ids(&first_page), ids(&everything[..50]));
    assert_eq!(ids(&list("?offset=50").await), ids(&everything[50..]));
    assert_eq!(
        ids(&list("?limit=5&offset=10").await),
        ids(&everything[10..15])
    );

    // Filters, alone and together.
    let completed = list("?status=COMPLETED").await;
    assert_eq!(ids(&completed), alice_in_order);
    let alice = list("?customer_id=alice").await;
    assert_eq!(ids(&alice), alice_in_order);
    let bob_cancelled = list("?customer_id=bob&status=CANCELLED&limit=500").await;
    assert_eq!(bob_cancelled.len(), 50);
    assert!(bob_cancelled.iter().all(|o| o["customer_id"] == "bob"
        && o["status"] == "CANCELLED"
        && o["cancellation_reason"] == "INVENTORY_UNAVAILABLE"));
    assert!(list("?status=PENDING").await.is_empty());
    assert!(list("?customer_id=carol").await.is_empty());
    assert!(list("?customer_id=alice&status=CANCELLED").await.is_empty());
    stack.cleanup().await;
}

#[tokio::test]
async fn the_timeline_notifications_and_stock_carry_the_contract_fields() {
    let stack = TestStack::start().await;
    let order = stack
        .place_order("customer-123", &[("product-A", 2)], 30.0)
        .await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(stack.final_order(id).await["status"], "COMPLETED");
    stack.assert_invariants().await;

    // /events: the saga as order-service saw it, each entry one of the events on the bus.
    let timeline = stack
        .get_list(Service::Order, &format!("/api/orders/{id}/events"))
        .await
        .unwrap();
    let tapped: Vec<Value> = stack
        .broker
        .deliveries()
        .await
        .iter()
        .filter(|e| e.order_id() == id)
        .map(|e| e.json())
        .collect();
    let types: Vec<&str> = timeline
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["OrderCreated", "PaymentProcessed", "OrderConfirmed"]
    );
    let mut previous = "";
    for entry in &timeline {
        let occurred_at = entry["occurred_at"].as_str().unwrap();
        assert!(is_contract_time(occurred_at), "{entry}");
        assert!(occurred_at >= previous, "out of order: {timeline:?}");
        previous = occurred_at;
        let on_the_bus = tapped
            .iter()
            .find(|e| e["event_id"] == entry["event_id"])
            .unwrap_or_else(|| panic!("{entry} is no event that was published"));
        assert_eq!(on_the_bus["event_type"], entry["event_type"]);
    }

    // Notifications: every field, oldest first.
    let notifications = stack
        .get_list(
            Service::Notification,
            &format!("/api/notifications?order_id={id}"),
        )
        .await
        .unwrap();
    let types: Vec<&str> = notifications
        .iter()
        .map(|n| n["event_type"].as_str().unwrap())
        .collect();
    // Oldest first means by when their events happened (a cause before its effect), not by
    // when each notification was written: the two events reach notification-service at
    // about the same time, and either may be written first.
    assert_eq!(types, ["PaymentProcessed", "OrderConfirmed"]);
    for notification in &notifications {
        assert!(notification["id"].is_string() || notification["id"].is_number());
        assert_eq!(notification["order_id"], id);
        assert!(
            !notification["message"].as_str().unwrap().is_empty(),
            "{notification}"
        );
        let created_at = notification["created_at"].as_str().unwrap();
        assert!(is_contract_time(created_at), "{notification}");
    }

    // One product's stock.
    let (status, product) = stack
        .get_json(Service::Inventory, "/api/inventory/product-A")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(product["product_id"], "product-A");
    assert_eq!(product["available"], 8);
    assert_eq!(product["reserved"], 2);
    let (status, missing) = stack
        .get_json(Service::Inventory, "/api/inventory/no-such-product")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing["detail"].is_string(), "{missing}");
    stack.cleanup().await;
}
