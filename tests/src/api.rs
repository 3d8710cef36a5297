//! Calls to the services' HTTP APIs, as methods of [`TestStack`].

use crate::eventually;
use crate::stack::{TEST_ADMIN_TOKEN, TestStack};
use ::contract::Service;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// An order body with these `(product, quantity)` lines.
pub fn order_body(customer: &str, items: &[(&str, i64)], total: f64) -> Value {
    json!({
        "customer_id": customer,
        "items": items.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>(),
        "total_amount": total,
    })
}

impl TestStack {
    /// Sends any body to `POST /api/orders`; returns the status and the JSON answer.
    pub async fn post_order_raw(&self, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(Service::Order, "/api/orders"))
            .json(body)
            .send()
            .await
            .expect("order-service answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Places an order and returns it; panics unless it is created.
    pub async fn place_order(&self, customer: &str, items: &[(&str, i64)], total: f64) -> Value {
        let (status, order) = self
            .post_order_raw(&order_body(customer, items, total))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        order
    }

    /// `POST /api/orders/{id}/cancel` (CONTRACT §15) with an optional JSON body; returns the
    /// status and the JSON answer.
    pub async fn cancel_order(&self, id: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(self.url(Service::Order, &format!("/api/orders/{id}/cancel")));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("order-service answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, service: Service, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(service, path))
            .send()
            .await
            .unwrap_or_else(|error| panic!("{} answers {path}: {error}", service.name()));
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn order(&self, id: &str) -> Value {
        let (status, order) = self
            .get_json(Service::Order, &format!("/api/orders/{id}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{order}");
        order
    }

    /// Waits until the order is `COMPLETED` or `CANCELLED` and returns it (a 503 while a
    /// server restarts counts as not yet).
    pub async fn final_order(&self, id: &str) -> Value {
        eventually(
            &format!("order {id} to end"),
            Duration::from_secs(60),
            || async {
                let (status, order) = self
                    .get_json(Service::Order, &format!("/api/orders/{id}"))
                    .await;
                match order["status"].as_str() {
                    Some("COMPLETED" | "CANCELLED") if status == StatusCode::OK => Ok(order),
                    _ => Err(format!("{status}: {order}")),
                }
            },
        )
        .await
    }

    /// Waits until every running service answers `/ready` with 200.
    pub async fn all_ready(&self) {
        for service in Service::ALL {
            if self.instances(service).is_empty() {
                continue;
            }
            eventually(
                &format!("{} to be ready", service.name()),
                Duration::from_secs(60),
                || async {
                    match self.get_json(service, "/ready").await {
                        (StatusCode::OK, _) => Ok(()),
                        (status, body) => Err(format!("{status} {body}")),
                    }
                },
            )
            .await;
        }
    }

    /// Every order, newest first.
    pub async fn all_orders(&self) -> Vec<Value> {
        self.try_all_orders()
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Every order, newest first, or why they cannot be listed.
    pub async fn try_all_orders(&self) -> Result<Vec<Value>, String> {
        let mut orders = Vec::new();
        loop {
            let path = format!("/api/orders?limit=500&offset={}", orders.len());
            let page = self.get_list(Service::Order, &path).await?;
            let done = page.len() < 500;
            orders.extend(page);
            if done {
                return Ok(orders);
            }
        }
    }

    /// A `GET` that must answer 200 with a JSON array; anything else is an error.
    pub async fn get_list(&self, service: Service, path: &str) -> Result<Vec<Value>, String> {
        let response = self
            .http
            .get(self.url(service, path))
            .send()
            .await
            .map_err(|error| format!("{} does not answer {path}: {error}", service.name()))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status != StatusCode::OK {
            return Err(format!("GET {path} answered {status}: {text}"));
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(list)) => Ok(list),
            _ => Err(format!("GET {path} answered {text:?}, not a JSON array")),
        }
    }

    pub async fn timeline(&self, id: &str) -> Vec<String> {
        let (status, events) = self
            .get_json(Service::Order, &format!("/api/orders/{id}/events"))
            .await;
        assert_eq!(status, StatusCode::OK, "{events}");
        events
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["event_type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// `product_id → (available, reserved)`.
    /// A 503 ("try again shortly": inventory's database was too busy to lend a connection
    /// in time, as on a loaded test machine) is asked again; any other failure panics.
    pub async fn stock(&self) -> BTreeMap<String, (i64, i64)> {
        let busy = StatusCode::SERVICE_UNAVAILABLE.to_string();
        eventually(
            "inventory to list its stock",
            Duration::from_secs(30),
            || async {
                match self.try_stock().await {
                    Err(error) if error.contains(&busy) => Err(error),
                    Err(error) => panic!("{error}"),
                    Ok(stock) => Ok(stock),
                }
            },
        )
        .await
    }

    /// `product_id → (available, reserved)`, or why the list cannot be read.
    pub async fn try_stock(&self) -> Result<BTreeMap<String, (i64, i64)>, String> {
        let list = self.get_list(Service::Inventory, "/api/inventory").await?;
        saga_invariants::read::<Vec<saga_invariants::Product>>("GET /api/inventory", &list.into())
            .map(saga_invariants::stock)
    }

    /// A request to an admin route of `service`, with the stack's admin token.
    pub fn admin(
        &self,
        method: reqwest::Method,
        service: Service,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(service, path))
            .bearer_auth(TEST_ADMIN_TOKEN)
            .header("x-requested-by", "saga-tests")
    }

    /// Sets the stock of a product nothing has reserved yet, through the API, and
    /// remembers the number for the invariants (the test's number, not the server's).
    pub async fn set_stock(&mut self, product: &str, available: i64) -> Value {
        let response = self
            .admin(
                reqwest::Method::PUT,
                Service::Inventory,
                &format!("/api/inventory/{product}"),
            )
            .json(&json!({"available": available}))
            .send()
            .await
            .expect("inventory-service answers");
        assert_eq!(response.status(), StatusCode::OK);
        let product_json: Value = response.json().await.expect("a product");
        assert_eq!(product_json["available"], available, "{product_json}");
        assert_eq!(
            product_json["reserved"], 0,
            "set_stock is for products nothing has reserved: {product_json}"
        );
        self.expected_stock.insert(product.to_owned(), available);
        product_json
    }

    /// The order's payment, if payment-service has one.
    pub async fn payment(&self, order_id: &str) -> Option<Value> {
        self.try_payment(order_id)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// The order's payment, `None` on 404, or why it cannot be read.
    pub async fn try_payment(&self, order_id: &str) -> Result<Option<Value>, String> {
        let (status, payment) = self
            .get_json(Service::Payment, &format!("/api/payments/{order_id}"))
            .await;
        match status {
            StatusCode::OK if payment.is_object() => Ok(Some(payment)),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(format!("GET payment answered {other}: {payment}")),
        }
    }

    /// The event types of the order's notifications, oldest first.
    pub async fn notifications(&self, order_id: &str) -> Vec<String> {
        self.get_list(
            Service::Notification,
            &format!("/api/notifications?order_id={order_id}"),
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"))
        .iter()
        .map(|n| n["event_type"].as_str().unwrap_or_default().to_owned())
        .collect()
    }

    /// The sum of a Prometheus counter over its labels, across the service's instances.
    pub async fn metric_sum(&self, service: Service, metric: &str) -> f64 {
        let mut total = 0.0;
        for instance in self.instances(service) {
            let text = self
                .http
                .get(format!("http://{}/metrics", instance.addr))
                .send()
                .await
                .expect("metrics answer")
                .text()
                .await
                .expect("metrics text");
            total += text
                .lines()
                .filter(|line| {
                    line.starts_with(&format!("{metric}{{"))
                        || line.starts_with(&format!("{metric} "))
                })
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>();
        }
        total
    }
}
