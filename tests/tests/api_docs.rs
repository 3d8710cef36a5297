//! The OpenAPI documents match the routes: every promised endpoint is documented, and
//! every documented operation is served and answers with a status it documents.

use reqwest::{Method, StatusCode};
use saga_tests::{Service, TestStack};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The endpoints of README "HTTP API", per service.
fn promised(service: Service) -> BTreeSet<(String, String)> {
    let common = [
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/metrics"),
        ("get", "/admin/dlq"),
        ("post", "/admin/dlq/replay"),
        ("post", "/admin/dlq/discard"),
    ];
    let own: &[(&str, &str)] = match service {
        Service::Order => &[
            ("post", "/api/orders"),
            ("get", "/api/orders"),
            ("get", "/api/orders/{id}"),
            ("get", "/api/orders/{id}/events"),
            ("get", "/api/orders/{id}/saga"),
            ("post", "/api/orders/{id}/cancel"),
            ("get", "/api/dashboard"),
            ("get", "/admin/dead-letters"),
            ("post", "/admin/dead-letters/{service}/replay"),
            ("post", "/admin/dead-letters/{service}/{message_id}/replay"),
            ("post", "/admin/dead-letters/{service}/{message_id}/discard"),
            ("post", "/admin/dead-letters/{service}/{message_id}/edit"),
            ("get", "/admin/dead-letters/groups"),
            ("post", "/admin/dead-letters/groups/{group}/replay"),
            ("post", "/admin/dead-letters/groups/{group}/discard"),
            ("get", "/admin/operator-log"),
        ],
        Service::Inventory => &[
            ("get", "/api/inventory"),
            ("get", "/api/inventory/{product_id}"),
            ("put", "/api/inventory/{product_id}"),
            ("get", "/api/inventory/reservations/{order_id}"),
            ("get", "/admin/operator-log"),
        ],
        Service::Payment => &[("get", "/api/payments/{order_id}"), ("get", "/breaker")],
        Service::Notification => &[("get", "/api/notifications")],
    };
    common
        .iter()
        .chain(own)
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.clone(), path.clone()));
        }
    }
    operations
}

#[tokio::test]
async fn every_documented_operation_is_served_and_every_endpoint_documented() {
    let mut stack = TestStack::start().await;
    let order = stack
        .place_order("customer-docs", &[("product-A", 1)], 9.5)
        .await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    stack.final_order(&order_id).await;
    // The cancel route acts on an order of its own, of a product nothing else takes.
    let to_cancel = stack
        .place_order("customer-docs", &[("product-B", 1)], 3.0)
        .await;
    let to_cancel = to_cancel["id"].as_str().unwrap().to_owned();
    stack.final_order(&to_cancel).await;

    for service in Service::ALL {
        // The order POSTed below has ended before the PUT below sets product-A's stock.
        stack.final_orders(&stack.all_orders().await).await;
        let (status, document) = stack.get_json(service, "/openapi.json").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(document["info"]["title"], service.name());
        let operations = documented(&document);
        assert_eq!(
            operations,
            promised(service),
            "{} documents other routes than it promises",
            service.name()
        );

        for (method, template) in operations {
            let id = if template.ends_with("/cancel") {
                &to_cancel
            } else {
                &order_id
            };
            let path = template
                .replace("{id}", id)
                .replace("{order_id}", &order_id)
                .replace("{product_id}", "product-A")
                .replace("{service}", "inventory")
                .replace("{message_id}", "no-such-message")
                .replace("{group}", "no-such-group");
            let method_name = method.to_uppercase().parse::<Method>().unwrap();
            let mut request = if method == "put" || path.starts_with("/admin/") {
                stack.admin(method_name, service, &path)
            } else {
                stack.http.request(method_name, stack.url(service, &path))
            };
            if method == "post" && path == "/api/orders" {
                request = request.json(&json!({"customer_id": "c", "items": [{"product_id": "product-A", "quantity": 1}], "total_amount": 1}));
            }
            if path == "/admin/dlq/discard" {
                request = request.json(&json!({"message_id": "no-such-message"}));
            }
            if method == "put" {
                request = request.json(&json!({"available": 9}));
                // What the completed orders hold stays reserved on top of the 9.
                let held = stack
                    .all_orders()
                    .await
                    .iter()
                    .filter(|o| o["status"] == "COMPLETED")
                    .count() as i64;
                stack.expected_stock.insert("product-A".into(), 9 + held);
            } else if path.ends_with("/edit") {
                request = request.json(&json!({"body": {}}));
            } else if method == "post"
                && path.starts_with("/admin/")
                && path != "/admin/dlq/discard"
            {
                request = request.json(&json!({}));
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            if method == "get" && status == StatusCode::OK {
                assert_tagged_reads_documented(&document, &template, &method, &response);
            }
            if template.ends_with("/cancel") {
                // Its stock is back before the PUT below counts what is held.
                saga_tests::eventually(
                    "product-B released",
                    std::time::Duration::from_secs(30),
                    || async {
                        match stack.stock().await["product-B"] {
                            (5, 0) => Ok(()),
                            other => Err(format!("{other:?}")),
                        }
                    },
                )
                .await;
            }
            let documented_statuses = &document["paths"][&template][&method]["responses"];
            // There is no dead letter (or group) to act on: the console says so.
            let expected_miss = (template.contains("{message_id}") || template.contains("{group}"))
                && status == StatusCode::NOT_FOUND;
            assert!(
                status.is_success() || expected_miss,
                "{} {method} {path} answered {status}",
                service.name()
            );
            assert!(
                documented_statuses.get(status.as_str()).is_some(),
                "{} {method} {path} answered {status}, which it does not document",
                service.name()
            );
        }
        let docs = stack
            .http
            .get(stack.url(service, "/docs/"))
            .send()
            .await
            .unwrap();
        assert_eq!(docs.status(), StatusCode::OK);
        assert!(
            docs.text().await.unwrap().contains("swagger"),
            "no Swagger UI at /docs"
        );
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}

/// A read that answers with an `ETag` takes `If-None-Match` and documents both, its
/// `Cache-Control` and its 304 (CONTRACT §14); one without documents none of them.
fn assert_tagged_reads_documented(
    document: &Value,
    template: &str,
    method: &str,
    response: &reqwest::Response,
) {
    let operation = &document["paths"][template][method];
    let takes_condition = operation["parameters"].as_array().is_some_and(|ps| {
        ps.iter()
            .any(|p| p["name"] == "If-None-Match" && p["in"] == "header")
    });
    let tagged = response.headers().contains_key(reqwest::header::ETAG);
    assert_eq!(
        tagged, takes_condition,
        "{method} {template}: ETag sent {tagged}, If-None-Match documented {takes_condition}"
    );
    let ok_headers = &operation["responses"]["200"]["headers"];
    for header in ["ETag", "Cache-Control"] {
        assert_eq!(
            ok_headers.get(header).is_some(),
            tagged,
            "{method} {template}: {header} documented on its 200 is not {tagged}"
        );
    }
    assert_eq!(
        operation["responses"].get("304").is_some(),
        tagged,
        "{method} {template}: 304 documented is not {tagged}"
    );
}
