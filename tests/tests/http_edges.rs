//! The edges of the HTTP layer: every error answers `{"detail": …}`, a made-up method does
//! not grow the metrics, and a number too large for a float is out of range, not bad JSON.

use reqwest::{Method, StatusCode};
use saga_tests::{Service, TestStack};
use serde_json::Value;

#[tokio::test]
async fn unknown_paths_methods_and_huge_numbers_answer_in_json() {
    let stack = TestStack::builder()
        .only(&[Service::Order, Service::Inventory])
        .start()
        .await;

    let made_up = Method::from_bytes(b"FROBNICATE").unwrap();
    for (method, path, expected) in [
        (made_up.clone(), "/health", StatusCode::METHOD_NOT_ALLOWED),
        (
            Method::DELETE,
            "/api/orders",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (Method::GET, "/no/such/path", StatusCode::NOT_FOUND),
    ] {
        let response = stack
            .http
            .request(method.clone(), stack.url(Service::Order, path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{method} {path}");
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(body["detail"].is_string(), "{method} {path}: {body}");
    }

    // Each made-up method would otherwise be a new metrics series, forever.
    let metrics = stack
        .http
        .get(stack.url(Service::Order, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("FROBNICATE"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("http_requests_total{")
                && line.contains("method=\"OTHER\"")),
        "{metrics}"
    );

    for amount in ["1e400", "-1e400", "123456789e999"] {
        let response = stack
            .http
            .post(stack.url(Service::Order, "/api/orders"))
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"customer_id": "c", "items": [{{"product_id": "product-A", "quantity": 1}}], "total_amount": {amount}}}"#
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{amount}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["detail"][0]["loc"],
            serde_json::json!(["body", "total_amount"]),
            "{body}"
        );
    }
    assert!(stack.all_orders().await.is_empty());
    stack.cleanup().await;
}
