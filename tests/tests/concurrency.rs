//! Stock never goes below zero, however many orders compete for it.

use futures_util::future::join_all;
use saga_tests::TestStack;

#[tokio::test]
async fn thirty_concurrent_orders_for_five_units_complete_exactly_five() {
    let stack = TestStack::start().await;

    let placed = join_all((0..30).map(|n| {
        let stack = &stack;
        async move {
            stack
                .place_order(&format!("customer-{n}"), &[("product-B", 1)], 9.99)
                .await
        }
    }))
    .await;
    let mut completed = 0;
    for order in &placed {
        let done = stack.final_order(order["id"].as_str().unwrap()).await;
        match done["status"].as_str() {
            Some("COMPLETED") => completed += 1,
            _ => assert_eq!(done["cancellation_reason"], "INVENTORY_UNAVAILABLE"),
        }
    }

    assert_eq!(completed, 5);
    assert_eq!(stack.stock().await["product-B"], (0, 5));
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn orders_sharing_several_products_never_deadlock_or_oversell() {
    let mut stack = TestStack::start().await;
    stack.set_stock("product-A", 20).await;
    stack.set_stock("product-B", 20).await;

    // Half take A then B, half B then A: a lock-order bug would deadlock or oversell here.
    let placed = join_all((0..40).map(|n| {
        let stack = &stack;
        let items: &[(&str, i64)] = if n % 2 == 0 {
            &[("product-A", 1), ("product-B", 1)]
        } else {
            &[("product-B", 1), ("product-A", 1)]
        };
        async move { stack.place_order("c", items, 3.0).await }
    }))
    .await;
    let mut completed = 0;
    for order in &placed {
        if stack.final_order(order["id"].as_str().unwrap()).await["status"] == "COMPLETED" {
            completed += 1;
        }
    }

    assert_eq!(completed, 20);
    let stock = stack.stock().await;
    assert_eq!(stock["product-A"], (0, 20));
    assert_eq!(stock["product-B"], (0, 20));
    stack.assert_invariants().await;
    stack.cleanup().await;
}
