//! Bad input gets a clear 4xx with a JSON `detail`, never a 500, and changes nothing.

use reqwest::StatusCode;
use saga_tests::{Service, TestStack, eventually};
use serde_json::{Value, json};
use std::time::Duration;

fn item(product: Value, quantity: Value) -> Value {
    json!({"product_id": product, "quantity": quantity})
}

fn order(customer: Value, items: Value, total: Value) -> String {
    json!({"customer_id": customer, "items": items, "total_amount": total}).to_string()
}

fn good_items() -> Value {
    json!([item("product-A".into(), 1.into())])
}

/// `(what, content type, body, expected status)`.
fn bad_requests() -> Vec<(&'static str, Option<&'static str>, Vec<u8>, StatusCode)> {
    use StatusCode as S;
    let json_ct = Some("application/json");
    let s = |text: String| text.into_bytes();
    let long = "x".repeat(101);
    let many: Vec<Value> = (0..101).map(|_| item("p".into(), 1.into())).collect();
    let mut nested = String::new();
    (0..200).for_each(|_| nested.push('['));
    vec![
        ("malformed JSON", json_ct, s(r#"{"customer_id": "#.into()), S::BAD_REQUEST),
        ("empty body", json_ct, Vec::new(), S::BAD_REQUEST),
        ("not UTF-8", json_ct, vec![0xff, 0xfe, b'{'], S::BAD_REQUEST),
        ("nested too deep", json_ct, s(nested), S::BAD_REQUEST),
        ("text/plain", Some("text/plain"), s(order("c".into(), good_items(), 1.into())), S::UNSUPPORTED_MEDIA_TYPE),
        ("no content type", None, s(order("c".into(), good_items(), 1.into())), S::UNSUPPORTED_MEDIA_TYPE),
        ("an array", json_ct, s("[]".into()), S::UNPROCESSABLE_ENTITY),
        ("null", json_ct, s("null".into()), S::UNPROCESSABLE_ENTITY),
        ("missing customer_id", json_ct, s(json!({"items": good_items(), "total_amount": 1}).to_string()), S::UNPROCESSABLE_ENTITY),
        ("missing items", json_ct, s(json!({"customer_id": "c", "total_amount": 1}).to_string()), S::UNPROCESSABLE_ENTITY),
        ("missing total_amount", json_ct, s(json!({"customer_id": "c", "items": good_items()}).to_string()), S::UNPROCESSABLE_ENTITY),
        ("numeric customer_id", json_ct, s(order(5.into(), good_items(), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("empty customer_id", json_ct, s(order("".into(), good_items(), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("blank customer_id", json_ct, s(order("  ".into(), good_items(), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("long customer_id", json_ct, s(order(long.clone().into(), good_items(), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("items an object", json_ct, s(order("c".into(), json!({}), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("no items", json_ct, s(order("c".into(), json!([]), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("101 items", json_ct, s(order("c".into(), json!(many), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("item a string", json_ct, s(order("c".into(), json!(["product-A"]), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("item without product", json_ct, s(order("c".into(), json!([{"quantity": 1}]), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("empty product", json_ct, s(order("c".into(), json!([item("".into(), 1.into())]), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("long product", json_ct, s(order("c".into(), json!([item(long.into(), 1.into())]), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("quantity 0", json_ct, s(order("c".into(), json!([item("p".into(), 0.into())]), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("negative quantity", json_ct, s(order("c".into(), json!([item("p".into(), (-1).into())]), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("quantity 10001", json_ct, s(order("c".into(), json!([item("p".into(), 10_001.into())]), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("fractional quantity", json_ct, s(order("c".into(), json!([item("p".into(), 1.5.into())]), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("quantity as text", json_ct, s(order("c".into(), json!([item("p".into(), "2".into())]), 1.into())), S::UNPROCESSABLE_ENTITY),
        ("huge quantity", json_ct, s(r#"{"customer_id":"c","items":[{"product_id":"p","quantity":1e20}],"total_amount":1}"#.into()), S::UNPROCESSABLE_ENTITY),
        ("total 0", json_ct, s(order("c".into(), good_items(), 0.into())), S::UNPROCESSABLE_ENTITY),
        ("negative total", json_ct, s(order("c".into(), good_items(), (-5).into())), S::UNPROCESSABLE_ENTITY),
        ("total as text", json_ct, s(order("c".into(), good_items(), "150".into())), S::UNPROCESSABLE_ENTITY),
        ("total null", json_ct, s(order("c".into(), good_items(), Value::Null)), S::UNPROCESSABLE_ENTITY),
        ("three decimals", json_ct, s(order("c".into(), good_items(), 1.234.into())), S::UNPROCESSABLE_ENTITY),
        ("total too large", json_ct, s(order("c".into(), good_items(), 1e15.into())), S::UNPROCESSABLE_ENTITY),
        ("body over 64 KiB", json_ct, s(order("c".repeat(70_000).into(), good_items(), 1.into())), S::PAYLOAD_TOO_LARGE),
    ]
}

#[tokio::test]
async fn bad_order_bodies_get_a_4xx_and_store_or_publish_nothing() {
    let stack = TestStack::start().await;
    let url = stack.url(Service::Order, "/api/orders");

    for (what, content_type, body, expected) in bad_requests() {
        let mut request = stack.http.post(&url).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "{what}: {answer}");
        assert!(!answer["detail"].is_null(), "{what}: no detail in {answer}");
    }

    // A good order last: once its event is out, any event of a bad one would be too.
    let sentinel = stack
        .place_order("customer-ok", &[("product-A", 1)], 1.0)
        .await;
    eventually(
        "the good order's event",
        Duration::from_secs(10),
        || async {
            match stack.broker.events_of("OrderCreated").await.len() {
                0 => Err("not yet".to_owned()),
                _ => Ok(()),
            }
        },
    )
    .await;
    let created = stack.broker.events_of("OrderCreated").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].order_id(), sentinel["id"].as_str().unwrap());
    assert_eq!(stack.all_orders().await.len(), 1);
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn validation_errors_say_where_and_what() {
    let stack = TestStack::start().await;
    let (status, answer) = stack
        .post_order_raw(&json!({"customer_id": "", "items": [{"product_id": "p", "quantity": 0}], "total_amount": 1}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let locations: Vec<&Value> = answer["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["loc"])
        .collect();
    assert_eq!(
        locations,
        [
            &json!(["body", "customer_id"]),
            &json!(["body", "items", 0, "quantity"])
        ]
    );
    assert!(
        answer["detail"][1]["msg"]
            .as_str()
            .unwrap()
            .contains("1 to 10000")
    );
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn order_queries_reject_bad_parameters_and_report_missing_orders() {
    let stack = TestStack::start().await;
    let missing = uuid::Uuid::new_v4();
    for (path, expected) in [
        (
            "/api/orders/not-a-uuid".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (format!("/api/orders/{missing}"), StatusCode::NOT_FOUND),
        (
            format!("/api/orders/{missing}/events"),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/orders/not-a-uuid/events".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/orders?limit=0".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/orders?limit=501".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/orders?limit=abc".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/orders?offset=-1".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/orders?status=SHIPPED".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, answer) = stack.get_json(Service::Order, &path).await;
        assert_eq!(status, expected, "{path}: {answer}");
        assert!(!answer["detail"].is_null(), "{path}: {answer}");
    }
    let (_, answer) = stack
        .get_json(Service::Order, &format!("/api/orders/{missing}"))
        .await;
    assert_eq!(answer, json!({"detail": "Order not found"}));
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn the_other_services_reject_bad_input_too() {
    let stack = TestStack::start().await;
    let put = |product: String, body: &'static str| {
        stack
            .admin(
                reqwest::Method::PUT,
                Service::Inventory,
                &format!("/api/inventory/{product}"),
            )
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (product, body) in [
        ("product-A".to_owned(), r#"{"available": -1}"#),
        ("product-A".to_owned(), r#"{"available": "many"}"#),
        ("product-A".to_owned(), r#"{}"#),
        ("product-A".to_owned(), r#"{"available": 2000000000}"#),
        ("x".repeat(101), r#"{"available": 1}"#),
    ] {
        let response = put(product, body).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert!(!answer["detail"].is_null(), "{body}: {answer}");
    }
    for (service, path, expected) in [
        (
            Service::Inventory,
            "/api/inventory/no-such-product",
            StatusCode::NOT_FOUND,
        ),
        (
            Service::Payment,
            "/api/payments/not-a-uuid",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Service::Payment,
            "/api/payments/6f1c5a9e-0000-4000-8000-000000000000",
            StatusCode::NOT_FOUND,
        ),
        (
            Service::Notification,
            "/api/notifications?order_id=nope",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Service::Notification,
            "/api/notifications?limit=0",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, answer) = stack.get_json(service, path).await;
        assert_eq!(status, expected, "{path}: {answer}");
        assert!(!answer["detail"].is_null(), "{path}: {answer}");
    }
    assert_eq!(stack.stock().await["product-A"], (10, 0));
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn every_4xx_of_every_service_says_what_is_wrong_in_detail() {
    let stack = TestStack::start().await;
    for service in Service::ALL {
        // A path no route serves, and a method a route does not take.
        for (method, path, expected) in [
            (
                reqwest::Method::GET,
                "/api/no-such-thing",
                StatusCode::NOT_FOUND,
            ),
            (
                reqwest::Method::DELETE,
                "/health",
                StatusCode::METHOD_NOT_ALLOWED,
            ),
        ] {
            let response = stack
                .http
                .request(method.clone(), stack.url(service, path))
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                expected,
                "{} {method} {path}",
                service.name()
            );
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            assert!(
                answer["detail"].is_string(),
                "{} {method} {path}: {answer}",
                service.name()
            );
        }
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}
