//! Conditional GETs (CONTRACT §14): the order, its events and saga, and the inventory
//! reads carry a strong `ETag` and `Cache-Control: private, no-cache`; `If-None-Match` with
//! the current tag gets 304 and no body; the tags change as the saga moves the data, and
//! hold still once it has ended. `POST /api/orders` answers 201 with `Location`.

use reqwest::StatusCode;
use saga_tests::api::order_body;
use saga_tests::{Service, TestStack, eventually};
use std::time::Duration;

/// The tagged reads of one order and the stock it touches.
fn reads(id: &str) -> Vec<(Service, String)> {
    vec![
        (Service::Order, format!("/api/orders/{id}")),
        (Service::Order, format!("/api/orders/{id}/events")),
        (Service::Order, format!("/api/orders/{id}/saga")),
        (Service::Inventory, "/api/inventory".to_owned()),
        (Service::Inventory, "/api/inventory/product-A".to_owned()),
    ]
}

/// `GET` with an optional `If-None-Match`: status, ETag, Cache-Control, body.
async fn get(
    stack: &TestStack,
    service: Service,
    path: &str,
    if_none_match: Option<&str>,
) -> (StatusCode, String, String, String) {
    let mut request = stack.http.get(stack.url(service, path));
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    let response = request.send().await.expect("the service answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, etag, cache) = (response.status(), header("etag"), header("cache-control"));
    (
        status,
        etag,
        cache,
        response.text().await.unwrap_or_default(),
    )
}

/// The current tag of each read, after checking the headers of a full answer.
async fn tags(stack: &TestStack, id: &str) -> Vec<String> {
    tags_of(stack, reads(id)).await
}

async fn tags_of(stack: &TestStack, reads: Vec<(Service, String)>) -> Vec<String> {
    let mut tags = Vec::new();
    for (service, path) in reads {
        let (status, etag, cache, body) = get(stack, service, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
            "{path}: a strong ETag, not {etag:?}"
        );
        assert_eq!(cache, "private, no-cache", "{path}");
        tags.push(etag);
    }
    tags
}

#[tokio::test]
async fn a_read_answers_304_without_a_body_to_its_current_etag() {
    let stack = TestStack::start().await;
    let order = stack
        .place_order("customer-1", &[("product-A", 2)], 20.0)
        .await;
    let id = order["id"].as_str().unwrap().to_owned();
    stack.final_order(&id).await;
    stack.assert_invariants().await;
    let current = tags(&stack, &id).await;
    for ((service, path), tag) in reads(&id).into_iter().zip(&current) {
        let (status, etag, cache, body) = get(&stack, service, &path, Some(tag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(body.is_empty(), "{path}: a 304 with a body: {body}");
        assert_eq!(&etag, tag, "{path}: the 304 names the tag");
        assert_eq!(cache, "private, no-cache", "{path}");
        // A list of tags, a weak form of it, and `*` match too; another tag does not.
        for matching in [format!("\"x\", {tag}"), format!("W/{tag}"), "*".to_owned()] {
            let (status, ..) = get(&stack, service, &path, Some(&matching)).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{path} with {matching}");
        }
        let (status, _, _, body) = get(&stack, service, &path, Some("\"stale\"")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!body.is_empty());
    }
    stack.cleanup().await;
}

#[tokio::test]
async fn the_etags_change_as_the_saga_moves_and_hold_once_it_ends() {
    let mut stack = TestStack::start().await;
    let stock_before = tags_of(&stack, reads("-").split_off(3)).await;
    // Payment held back: the order stays PENDING while the first tags are read.
    stack.pause(Service::Payment);
    let order = stack
        .place_order("customer-1", &[("product-A", 2)], 20.0)
        .await;
    let id = order["id"].as_str().unwrap().to_owned();
    let pending = tags(&stack, &id).await;
    assert_eq!(stack.order(&id).await["status"], "PENDING");
    eventually("the reservation", Duration::from_secs(20), || async {
        match stack.stock().await.get("product-A") {
            Some((8, 2)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let reserved = tags(&stack, &id).await;
    assert_ne!(
        reserved[3..],
        stock_before[..],
        "the reservation changed the stock's tags"
    );
    assert_eq!(
        reserved[..2],
        pending[..2],
        "nothing of the order itself moved yet"
    );
    stack.resume(Service::Payment);

    let ended = stack.final_order(&id).await;
    assert_eq!(ended["status"], "COMPLETED");
    // The saga view takes the audited events a moment after they are published.
    eventually(
        "the whole saga in its view",
        Duration::from_secs(20),
        || async {
            let (_, _, _, body) = get(
                &stack,
                Service::Order,
                &format!("/api/orders/{id}/saga"),
                None,
            )
            .await;
            if body.contains("PaymentProcessed")
                && body.contains("OrderConfirmed")
                && body.contains("InventoryReserved")
            {
                Ok(())
            } else {
                Err(body)
            }
        },
    )
    .await;
    stack.assert_invariants().await;
    let at_end = tags(&stack, &id).await;
    for (i, (service, path)) in reads(&id).into_iter().enumerate() {
        if i < 3 {
            assert_ne!(
                pending[i], at_end[i],
                "{path}: the saga changed it, its tag stayed"
            );
        } else {
            assert_eq!(
                reserved[i], at_end[i],
                "{path}: the payment did not change the stock"
            );
        }
        // The tag of the pending order is stale: a full answer with the new tag.
        let (status, etag, _, body) = get(&stack, service, &path, Some(&pending[i])).await;
        let expected = if pending[i] == at_end[i] {
            StatusCode::NOT_MODIFIED
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "{path}");
        assert_eq!(etag, at_end[i]);
        assert_eq!(
            body.is_empty(),
            expected == StatusCode::NOT_MODIFIED,
            "{path}"
        );
    }
    // Nothing moves any more: the same tags, read after read.
    assert_eq!(tags(&stack, &id).await, at_end);
    // A restock of another product changes the list's tag only.
    stack.set_stock("product-B", 50).await;
    let restocked = tags(&stack, &id).await;
    assert_eq!(restocked[..3], at_end[..3]);
    assert_ne!(restocked[3], at_end[3], "the list shows product-B");
    assert_eq!(restocked[4], at_end[4], "product-A did not change");
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_created_order_answers_201_with_its_location() {
    let stack = TestStack::start().await;
    let response = stack
        .http
        .post(stack.url(Service::Order, "/api/orders"))
        .json(&order_body("customer-1", &[("product-A", 1)], 10.0))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let order: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/orders/{}", order["id"].as_str().unwrap())
    );
    let (status, _, _, body) = get(&stack, Service::Order, &location, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(order["id"].as_str().unwrap()));
    stack.final_order(order["id"].as_str().unwrap()).await;
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn the_dashboard_state_answers_304_while_nothing_shown_changes() {
    let stack = TestStack::start().await;
    let order = stack
        .place_order("customer-1", &[("product-A", 1)], 10.0)
        .await;
    stack.final_order(order["id"].as_str().unwrap()).await;
    stack.assert_invariants().await;
    let (status, etag, cache, _) = get(&stack, Service::Order, "/api/dashboard", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        etag.starts_with("W/\""),
        "a weak tag (generated_at moves): {etag}"
    );
    assert_eq!(cache, "private, no-cache");
    let (status, _, _, body) = get(&stack, Service::Order, "/api/dashboard", Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    let next = stack
        .place_order("customer-2", &[("product-A", 1)], 10.0)
        .await;
    let (status, newer, _, _) = get(&stack, Service::Order, "/api/dashboard", Some(&etag)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(newer, etag);
    stack.final_order(next["id"].as_str().unwrap()).await;
    stack.assert_invariants().await;
    stack.cleanup().await;
}
