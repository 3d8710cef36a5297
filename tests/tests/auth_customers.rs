//! With authentication on, the caller is the token's `sub` (CONTRACT §12): a customer
//! places orders only in its own name, sees only its own orders — another's reads exactly
//! like an unknown one — and `orders:admin` sees and acts for everyone. The other
//! services' reads need a token (inventory) or `orders:admin` (payment, notification);
//! `PUT` stock keeps `ADMIN_TOKEN`; inventory shows a customer only its own orders'
//! reservations. Off — nothing configured, or `AUTH_DISABLED=true` whatever else is — the
//! API is open and each service says so. Keys travel over https, or stay on this host.

use reqwest::{Method, StatusCode};
use saga_tests::api::order_body;
use saga_tests::auth::{JwksServer, SigningKey};
use saga_tests::stack::TEST_ADMIN_TOKEN;
use saga_tests::{Service, TestStack};
use serde_json::{Value, json};

/// All four services, authentication on; the stack's own client is `orders:admin`.
async fn authenticated_stack(key: &SigningKey) -> (TestStack, JwksServer) {
    let jwks = JwksServer::start(&[key]).await;
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .authenticated(&jwks.url, &key.admin("ops-admin"))
        .start()
        .await;
    stack.all_ready().await;
    (stack, jwks)
}

/// A request with this bearer token only (no stack default).
async fn call(
    stack: &TestStack,
    method: Method,
    service: Service,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, stack.url(service, path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the service answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn items() -> Value {
    json!([{"product_id": "product-A", "quantity": 1}])
}

#[tokio::test]
async fn a_customer_places_orders_in_its_own_name_only() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = authenticated_stack(&key).await;
    let alice = key.customer("customer-alice");

    // Without customer_id, the order is the token's subject's.
    let body = json!({"items": items(), "total_amount": 10.0});
    let (status, order) = call(
        &stack,
        Method::POST,
        Service::Order,
        "/api/orders",
        Some(&alice),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["customer_id"], "customer-alice");
    // Naming itself is fine too.
    let own = order_body("customer-alice", &[("product-A", 1)], 10.0);
    let (status, _) = call(
        &stack,
        Method::POST,
        Service::Order,
        "/api/orders",
        Some(&alice),
        Some(own),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // Naming another customer is forbidden, and creates nothing.
    let other = order_body("customer-bob", &[("product-A", 1)], 10.0);
    let (status, body) = call(
        &stack,
        Method::POST,
        Service::Order,
        "/api/orders",
        Some(&alice),
        Some(other),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("only for itself"),
        "{body}"
    );
    let orders = stack.all_orders().await;
    assert_eq!(orders.len(), 2);
    assert!(orders.iter().all(|o| o["customer_id"] == "customer-alice"));
    stack.final_orders(&orders).await;
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn another_customers_order_reads_exactly_like_an_unknown_one() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = authenticated_stack(&key).await;
    let bob = key.customer("customer-bob");
    let alice = key.customer("customer-alice");
    let order = stack
        .place_order("customer-alice", &[("product-A", 1)], 10.0)
        .await;
    let id = order["id"].as_str().unwrap();
    stack.final_order(id).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    for suffix in ["", "/events", "/saga"] {
        let theirs = call(
            &stack,
            Method::GET,
            Service::Order,
            &format!("/api/orders/{id}{suffix}"),
            Some(&bob),
            None,
        )
        .await;
        let nobodys = call(
            &stack,
            Method::GET,
            Service::Order,
            &format!("/api/orders/{unknown}{suffix}"),
            Some(&bob),
            None,
        )
        .await;
        assert_eq!(theirs.0, StatusCode::NOT_FOUND, "{suffix}: {}", theirs.1);
        assert_eq!(theirs.1, json!({"detail": "Order not found"}), "{suffix}");
        assert_eq!(
            theirs, nobodys,
            "{suffix}: another's order differs from an unknown one"
        );
        let own = call(
            &stack,
            Method::GET,
            Service::Order,
            &format!("/api/orders/{id}{suffix}"),
            Some(&alice),
            None,
        )
        .await;
        assert_eq!(own.0, StatusCode::OK, "{suffix}: {}", own.1);
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_customer_reads_only_its_own_orders_reservation_and_its_saga_view_still_shows_it() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = authenticated_stack(&key).await;
    let alice = key.customer("customer-alice");
    let bob = key.customer("customer-bob");
    let admin = key.admin("ops-admin");
    let order = stack
        .place_order("customer-alice", &[("product-A", 1)], 10.0)
        .await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(stack.final_order(&id).await["status"], "COMPLETED");
    let reservation = |order_id: &str, token: Option<&str>| {
        let path = format!("/api/inventory/reservations/{order_id}");
        let token = token.map(str::to_owned);
        let stack = &stack;
        async move {
            call(
                stack,
                Method::GET,
                Service::Inventory,
                &path,
                token.as_deref(),
                None,
            )
            .await
        }
    };

    let (status, own) = reservation(&id, Some(&alice)).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["status"], "RESERVED", "{own}");
    let (status, as_admin) = reservation(&id, Some(&admin)).await;
    assert_eq!((status, &as_admin), (StatusCode::OK, &own));
    let (status, _) = reservation(&id, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Another customer learns nothing: the answer is an unknown order's.
    let theirs = reservation(&id, Some(&bob)).await;
    let nobodys = reservation(&uuid::Uuid::now_v7().to_string(), Some(&bob)).await;
    assert_eq!(theirs.0, StatusCode::NOT_FOUND, "{}", theirs.1);
    assert_eq!(theirs, nobodys);

    // order-service's saga view passes the customer's own token on and still shows the
    // reservation inventory-service announced.
    let (status, saga) = call(
        &stack,
        Method::GET,
        Service::Order,
        &format!("/api/orders/{id}/saga"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saga}");
    let reserved = saga
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["event_type"] == "InventoryReserved")
        .unwrap_or_else(|| panic!("no InventoryReserved in alice's saga view: {saga}"));
    assert_eq!(reserved["event_id"], own["reserved"]["event_id"], "{saga}");
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn the_list_shows_only_the_callers_orders() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = authenticated_stack(&key).await;
    for customer in ["customer-alice", "customer-bob", "customer-alice"] {
        stack.place_order(customer, &[("product-A", 1)], 10.0).await;
    }
    let alice = key.customer("customer-alice");
    let (status, list) = call(
        &stack,
        Method::GET,
        Service::Order,
        "/api/orders",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|o| o["customer_id"] == "customer-alice"));
    // Asking for someone else's lists nothing.
    let (_, theirs) = call(
        &stack,
        Method::GET,
        Service::Order,
        "/api/orders?customer_id=customer-bob",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(theirs, json!([]));
    // The dashboard's data, too, is the caller's only, without the operators' queues.
    let (status, dashboard) = call(
        &stack,
        Method::GET,
        Service::Order,
        "/api/dashboard",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{dashboard}");
    assert_eq!(
        dashboard["orders"].as_array().unwrap().len(),
        2,
        "{dashboard}"
    );
    assert_eq!(dashboard["dead_letters"], json!([]));
    assert!(
        dashboard["stock"].is_array(),
        "the caller's token reads the stock: {dashboard}"
    );
    stack.final_orders(&stack.all_orders().await).await;
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn an_admin_token_sees_and_acts_for_every_customer() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = authenticated_stack(&key).await;
    let admin = key.admin("ops-admin");
    let alice_order = stack
        .place_order("customer-alice", &[("product-A", 1)], 10.0)
        .await;
    let body = order_body("customer-bob", &[("product-A", 1)], 12.0);
    let (status, bob_order) = call(
        &stack,
        Method::POST,
        Service::Order,
        "/api/orders",
        Some(&admin),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{bob_order}");
    assert_eq!(bob_order["customer_id"], "customer-bob");
    let (_, list) = call(
        &stack,
        Method::GET,
        Service::Order,
        "/api/orders",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    for order in [&alice_order, &bob_order] {
        let id = order["id"].as_str().unwrap();
        stack.final_order(id).await;
        for suffix in ["", "/events", "/saga"] {
            let (status, _) = call(
                &stack,
                Method::GET,
                Service::Order,
                &format!("/api/orders/{id}{suffix}"),
                Some(&admin),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{suffix}");
        }
    }
    let (_, dashboard) = call(
        &stack,
        Method::GET,
        Service::Order,
        "/api/dashboard",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(dashboard["orders"].as_array().unwrap().len(), 2);
    assert_eq!(dashboard["dead_letters"].as_array().unwrap().len(), 4);
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn the_other_services_reads_need_a_token_and_payments_and_notifications_need_admin() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = authenticated_stack(&key).await;
    let order = stack
        .place_order("customer-alice", &[("product-A", 1)], 10.0)
        .await;
    let id = order["id"].as_str().unwrap().to_owned();
    stack.final_order(&id).await;
    let alice = key.customer("customer-alice");
    let admin = key.admin("ops-admin");
    let payment = format!("/api/payments/{id}");
    let notifications = format!("/api/notifications?order_id={id}");
    let cases: [(Service, &str, Option<&str>, StatusCode); 10] = [
        (
            Service::Inventory,
            "/api/inventory",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            Service::Inventory,
            "/api/inventory",
            Some(&alice),
            StatusCode::OK,
        ),
        (
            Service::Inventory,
            "/api/inventory/product-A",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            Service::Inventory,
            "/api/inventory/product-A",
            Some(&alice),
            StatusCode::OK,
        ),
        (Service::Payment, &payment, None, StatusCode::UNAUTHORIZED),
        (
            Service::Payment,
            &payment,
            Some(&alice),
            StatusCode::FORBIDDEN,
        ),
        (Service::Payment, &payment, Some(&admin), StatusCode::OK),
        (
            Service::Notification,
            &notifications,
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            Service::Notification,
            &notifications,
            Some(&alice),
            StatusCode::FORBIDDEN,
        ),
        (
            Service::Notification,
            &notifications,
            Some(&admin),
            StatusCode::OK,
        ),
    ];
    for (service, path, token, expected) in cases {
        let (status, body) = call(&stack, Method::GET, service, path, token, None).await;
        assert_eq!(
            status,
            expected,
            "{} {path} as {token:?}: {body}",
            service.name()
        );
        if !status.is_success() {
            assert!(body["detail"].is_string(), "{body}");
            continue;
        }
        // A 200 shows what was asked for.
        let at = format!("{} {path}: {body}", service.name());
        match (service, path) {
            (Service::Inventory, "/api/inventory") => assert!(
                body.as_array()
                    .is_some_and(|list| list.iter().any(|p| p["product_id"] == "product-A")),
                "{at}"
            ),
            (Service::Inventory, _) => assert_eq!(body["product_id"], "product-A", "{at}"),
            (Service::Payment, _) => {
                assert_eq!(body["order_id"], id.as_str(), "{at}");
                assert_eq!(body["status"], "PROCESSED", "{at}");
                assert_eq!(body["amount"], 10.0, "{at}");
            }
            _ => {
                let sent = body.as_array().unwrap_or_else(|| panic!("{at}"));
                assert!(!sent.is_empty(), "{at}");
                assert!(sent.iter().all(|n| n["order_id"] == id.as_str()), "{at}");
            }
        }
    }
    // A customer's 403 names the scope it lacks, as RFC 6750 has it.
    let response = reqwest::Client::new()
        .get(stack.url(Service::Payment, &payment))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("orders:admin"),
        "{challenge}"
    );
    // Setting stock keeps ADMIN_TOKEN: a JWT, even an admin's, is not it.
    let put = |token: &str| {
        reqwest::Client::new()
            .put(stack.url(Service::Inventory, "/api/inventory/product-A"))
            .bearer_auth(token)
            .json(&json!({"available": 20}))
            .send()
    };
    assert_eq!(
        put(&admin).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // The health and operations endpoints stay open.
    for service in Service::ALL {
        let (status, _) = call(&stack, Method::GET, service, "/health", None, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        put(TEST_ADMIN_TOKEN).await.unwrap().status(),
        StatusCode::OK
    );
    let mut stack = stack;
    stack.expected_stock.insert("product-A".into(), 21);
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn without_auth_variables_the_api_is_open_and_each_service_warns_once() {
    let stack = TestStack::start().await;
    let (status, order) = call(
        &stack,
        Method::POST,
        Service::Order,
        "/api/orders",
        None,
        Some(order_body("customer-1", &[("product-A", 1)], 10.0)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    stack.final_order(&id).await;
    for (service, path) in [
        (Service::Order, format!("/api/orders/{id}")),
        (Service::Order, "/api/orders".to_owned()),
        (Service::Inventory, "/api/inventory".to_owned()),
        (Service::Payment, format!("/api/payments/{id}")),
        (
            Service::Notification,
            format!("/api/notifications?order_id={id}"),
        ),
    ] {
        let (status, body) = call(&stack, Method::GET, service, &path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    // A body without customer_id is still a 422, as before.
    let (status, body) = call(
        &stack,
        Method::POST,
        Service::Order,
        "/api/orders",
        None,
        Some(json!({"items": items(), "total_amount": 1.0})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "customer_id"]));
    for service in Service::ALL {
        let warnings = stack
            .logs(service)
            .lines()
            .filter(|line| line.contains("\"WARN\"") && line.contains("authentication is off"))
            .count();
        assert_eq!(warnings, 1, "{} warns {warnings} times", service.name());
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[test]
fn a_key_without_an_issuer_stops_the_service_naming_auth_issuer() {
    saga_tests::stack::ensure_built();
    let key = SigningKey::es256("k1");
    for service in Service::ALL {
        let output = std::process::Command::new(devstack::binary(service.name()).unwrap())
            .env_clear()
            .env("AUTH_PUBLIC_KEY", &key.public_pem)
            .env("LOG_FORMAT", "json")
            .output()
            .expect("the binary runs");
        assert_eq!(output.status.code(), Some(2), "{}", service.name());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("AUTH_ISSUER"),
            "{}: {stderr}",
            service.name()
        );
    }
}

#[tokio::test]
async fn auth_disabled_runs_the_api_open_whatever_else_is_set_and_each_service_warns_once() {
    let key = SigningKey::es256("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let stack = TestStack::builder()
        .env("AUTH_JWKS_URL", &jwks.url)
        .env("AUTH_ISSUER", saga_tests::auth::ISSUER)
        .env("AUTH_DISABLED", "true")
        .start()
        .await;
    let (status, order) = call(
        &stack,
        Method::POST,
        Service::Order,
        "/api/orders",
        None,
        Some(order_body("customer-1", &[("product-A", 1)], 10.0)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    stack.final_order(order["id"].as_str().unwrap()).await;
    for service in Service::ALL {
        let warnings: Vec<String> = stack
            .logs(service)
            .lines()
            .filter(|line| line.contains("\"WARN\"") && line.contains("authentication is off"))
            .map(str::to_owned)
            .collect();
        assert_eq!(warnings.len(), 1, "{}: {warnings:?}", service.name());
        assert!(
            warnings[0].contains("AUTH_DISABLED=true") && warnings[0].contains("AUTH_JWKS_URL"),
            "the warning says why and what it ignores: {}",
            warnings[0]
        );
    }
    assert_eq!(jwks.fetches(), 0, "no key set is fetched while it is off");
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[test]
fn key_sources_over_plain_http_off_this_host_stop_every_service_naming_the_variable() {
    saga_tests::stack::ensure_built();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[
                ("AUTH_JWKS_URL", "http://id.example.com/jwks"),
                ("AUTH_ISSUER", "https://id.example.com"),
            ],
            "AUTH_JWKS_URL",
        ),
        // The issuer alone: its discovery document would be read over plain http.
        (&[("AUTH_ISSUER", "http://id.example.com")], "AUTH_ISSUER"),
        (&[("AUTH_ISSUER", "id.example.com")], "AUTH_ISSUER"),
    ];
    for service in Service::ALL {
        for (vars, named) in cases {
            let output = std::process::Command::new(devstack::binary(service.name()).unwrap())
                .arg("--check-config")
                .env_clear()
                .envs(vars.iter().copied())
                .output()
                .expect("the binary runs");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{} {vars:?}: {stderr}",
                service.name()
            );
            assert!(stderr.contains(named), "{vars:?}: {stderr}");
        }
        // On this host, plain http is fine (a provider beside the service).
        let output = std::process::Command::new(devstack::binary(service.name()).unwrap())
            .arg("--check-config")
            .env_clear()
            .env("AUTH_JWKS_URL", "http://127.0.0.1:9/jwks")
            .env("AUTH_ISSUER", "https://id.example.com")
            .output()
            .expect("the binary runs");
        assert_eq!(output.status.code(), Some(0), "{output:?}");
    }
}
