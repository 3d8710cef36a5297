//! Keys as a real deployment has them (CONTRACT §12): the JWKS is fetched at start
//! (`/ready` 503 until it is), refreshed, fetched again for an unknown `kid` at most once
//! per 30 s however many such tokens arrive, kept while the endpoint is down, and rotated
//! without refusing a token that is still valid; a PEM key (`AUTH_PUBLIC_KEY`) instead of
//! a JWKS works end to end. The JWKS stub counts every fetch and when it came.
//!
//! Tests of the unknown-`kid` fetch set the periodic refresh to an hour, so any fetch after
//! the first at start is the unknown-`kid` one.

use reqwest::StatusCode;
use saga_tests::auth::{ISSUER, JwksServer, SigningKey, claims};
use saga_tests::{Service, TestStack, eventually};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The periodic refresh, out of the way of a test about the unknown-`kid` fetch.
const AN_HOUR: &str = "3600";
/// The customer whose token the tests send, and who has one order.
const CUSTOMER: &str = "customer-1";

/// order-service alone against `jwks`, with extra variables, and one order of
/// [`CUSTOMER`]'s (placed by the stack's `orders:admin` client) that its token must show.
async fn order_service(
    jwks: &JwksServer,
    admin: &str,
    extra: &[(&str, &str)],
) -> (TestStack, String) {
    let mut builder = TestStack::builder()
        .only(&[Service::Order])
        .authenticated(&jwks.url, admin);
    for (name, value) in extra {
        builder = builder.env(name, value);
    }
    let stack = builder.start().await;
    stack.all_ready().await;
    let order = stack.place_order(CUSTOMER, &[("product-A", 1)], 1.0).await;
    let id = order["id"].as_str().expect("an order id").to_owned();
    (stack, id)
}

/// `GET /api/orders` with `token`: its status and body.
async fn orders_with(stack: &TestStack, token: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(stack.url(Service::Order, "/api/orders"))
        .bearer_auth(token)
        .send()
        .await
        .expect("order-service answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The status of `GET /api/orders` with `token`.
async fn status_with(stack: &TestStack, token: &str) -> StatusCode {
    orders_with(stack, token).await.0
}

/// `token` is taken as [`CUSTOMER`]'s: 200, and the list is that customer's one order.
async fn assert_accepted(stack: &TestStack, token: &str, order_id: &str) {
    let (status, body) = orders_with(stack, token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed = body
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"));
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["id"], order_id, "{body}");
    assert_eq!(listed[0]["customer_id"], CUSTOMER, "{body}");
}

async fn ready_status(stack: &TestStack) -> (StatusCode, String) {
    let response = reqwest::get(stack.url(Service::Order, "/ready"))
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn ready_is_503_until_a_first_key_set_is_loaded() {
    let key = SigningKey::es256("k1");
    let jwks = JwksServer::start(&[&key]).await;
    jwks.set_down(true);
    let stack = TestStack::builder()
        .only(&[Service::Order])
        .authenticated(&jwks.url, &key.admin("ops"))
        .start()
        .await;
    eventually("a failed first fetch", Duration::from_secs(10), || async {
        if jwks.fetches() >= 1 {
            Ok(())
        } else {
            Err("no fetch yet".to_owned())
        }
    })
    .await;
    let (status, body) = ready_status(&stack).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("signing keys"), "{body}");
    // No token can be checked yet: 503 with Retry-After, not a 401 that blames the token.
    assert_eq!(
        status_with(&stack, &key.customer(CUSTOMER)).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    jwks.set_down(false);
    eventually(
        "ready once the keys are there",
        Duration::from_secs(30),
        || async {
            match ready_status(&stack).await {
                (StatusCode::OK, _) => Ok(()),
                (status, body) => Err(format!("{status} {body}")),
            }
        },
    )
    .await;
    assert_eq!(
        orders_with(&stack, &key.customer(CUSTOMER)).await,
        (StatusCode::OK, json!([])),
        "the customer has no order yet"
    );
    stack.cleanup().await;
}

/// With the periodic refresh an hour away, a flood of tokens naming unknown key ids, kept
/// up for 35 s after the fetch at start, fetches the set exactly once: not in the first
/// 30 s (the fetch at start counts), and once as soon as 30 s have passed.
#[tokio::test]
async fn a_flood_of_unknown_key_ids_fetches_the_jwks_exactly_once_per_30_s() {
    const WINDOW: Duration = Duration::from_secs(30);
    let key = SigningKey::es256("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let (stack, order) = order_service(
        &jwks,
        &key.admin("ops"),
        &[("AUTH_JWKS_REFRESH_SECS", AN_HOUR)],
    )
    .await;
    let at_start = jwks.fetched_at();
    assert_eq!(at_start.len(), 1, "one fetch at start");
    let flood_until = at_start[0] + WINDOW + Duration::from_secs(5);
    let client = reqwest::Client::new();
    let url = stack.url(Service::Order, "/api/orders");
    let mut statuses = Vec::new();
    let mut round = 0;
    while Instant::now() < flood_until {
        let requests = (0..30).map(|i| {
            let stranger = SigningKey::es256(&format!("random-{round}-{i}"));
            let token = stranger.sign(&claims(CUSTOMER, None));
            client.get(&url).bearer_auth(token).send()
        });
        for response in futures_util::future::join_all(requests).await {
            statuses.push(response.expect("order-service answers").status());
        }
        round += 1;
    }
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    let fetched = jwks.fetched_at();
    let since_start: Vec<Duration> = fetched.iter().map(|at| *at - fetched[0]).collect();
    println!(
        "{} tokens with unknown kids over {round} rounds: {} fetches",
        statuses.len(),
        fetched.len()
    );
    assert_eq!(
        fetched.len(),
        2,
        "the fetch at start and one for the unknown kids; the first ones came at {:?}",
        &since_start[..since_start.len().min(5)]
    );
    // The service notes a fetch as it starts it, the stub as it arrives: a little slack.
    assert!(
        since_start[1] >= WINDOW - Duration::from_millis(500),
        "the unknown kids fetched {:?} after the fetch at start",
        since_start[1]
    );
    // The known key still works.
    assert_accepted(&stack, &key.customer(CUSTOMER), &order).await;
    stack.cleanup().await;
}

/// The periodic refresh alone (every second here; the unknown-`kid` fetch is held back by
/// its 30 s limit, which every periodic fetch restarts) brings a new key in and takes a
/// withdrawn one out.
#[tokio::test]
async fn the_key_set_is_fetched_again_every_refresh_period() {
    let old = SigningKey::es256("k1");
    let new = SigningKey::es256("k2");
    let jwks = JwksServer::start(&[&old]).await;
    let (stack, order) =
        order_service(&jwks, &old.admin("ops"), &[("AUTH_JWKS_REFRESH_SECS", "1")]).await;
    let before = jwks.fetches();
    eventually(
        "two more periodic fetches",
        Duration::from_secs(15),
        || async {
            let more = jwks.fetches() - before;
            if more >= 2 {
                Ok(())
            } else {
                Err(format!("{more} more"))
            }
        },
    )
    .await;

    jwks.publish(&[&new]);
    eventually(
        "the old key dropped and the new one taken by a refresh",
        Duration::from_secs(15),
        || async {
            match (
                status_with(&stack, &old.customer(CUSTOMER)).await,
                status_with(&stack, &new.customer(CUSTOMER)).await,
            ) {
                (StatusCode::UNAUTHORIZED, StatusCode::OK) => Ok(()),
                other => Err(format!("old, new: {other:?}")),
            }
        },
    )
    .await;
    assert_accepted(&stack, &new.customer(CUSTOMER), &order).await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_jwks_outage_keeps_the_cached_keys_working() {
    let key = SigningKey::es256("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let (stack, order) = order_service(
        &jwks,
        &key.admin("ops"),
        &[
            ("AUTH_JWKS_REFRESH_SECS", "1"),
            ("AUTH_JWKS_MIN_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    jwks.set_down(true);
    let before = jwks.fetches();
    eventually("refreshes that fail", Duration::from_secs(15), || async {
        let failed = jwks.fetches() - before;
        if failed >= 3 {
            Ok(())
        } else {
            Err(format!("{failed} failed"))
        }
    })
    .await;
    assert_accepted(&stack, &key.customer(CUSTOMER), &order).await;
    // An unknown kid meanwhile is a 401, not a 5xx.
    let stranger = SigningKey::es256("k2");
    assert_eq!(
        status_with(&stack, &stranger.customer(CUSTOMER)).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = ready_status(&stack).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "cached keys are enough to be ready: {body}"
    );
    jwks.set_down(false);
    stack.cleanup().await;
}

/// The provider publishes its next key beside the old one and starts signing with it: the
/// first token naming it is accepted at once, by the one fetch it causes — the periodic
/// refresh is an hour away — and the old key's tokens keep working.
#[tokio::test]
async fn a_token_naming_a_new_key_is_accepted_at_once_by_fetching_the_set_again() {
    let old = SigningKey::es256("2026-old");
    let new = SigningKey::ed25519("2026-new");
    let jwks = JwksServer::start(&[&old]).await;
    let (stack, order) = order_service(
        &jwks,
        &old.admin("ops"),
        &[
            ("AUTH_JWKS_REFRESH_SECS", AN_HOUR),
            ("AUTH_JWKS_MIN_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    let old_token = old.customer(CUSTOMER);
    let new_token = new.customer(CUSTOMER);
    assert_accepted(&stack, &old_token, &order).await;
    // The unknown-kid fetch waits a second after the last fetch (the one at start).
    let at_start = jwks.fetched_at();
    assert_eq!(at_start.len(), 1, "one fetch at start");
    eventually(
        "the 1 s limit since the fetch at start to pass",
        Duration::from_secs(10),
        || async {
            match at_start[0].elapsed() {
                since if since > Duration::from_millis(1200) => Ok(()),
                since => Err(format!("{since:?}")),
            }
        },
    )
    .await;

    jwks.publish(&[&old, &new]);
    assert_accepted(&stack, &new_token, &order).await;
    assert_eq!(jwks.fetches(), 2, "the new token's request fetched the set");
    assert_accepted(&stack, &old_token, &order).await;
    assert_accepted(&stack, &new_token, &order).await;
    assert_eq!(jwks.fetches(), 2, "the set holds both keys now: no fetch");
    stack.cleanup().await;
}

/// `AUTH_PUBLIC_KEY` instead of a JWKS, on all four services: a customer's token (no
/// `kid`, as the dev launcher signs) places an order that completes; each service refuses
/// a request without a token and one signed by another key, and answers the key's tokens.
#[tokio::test]
async fn a_pem_public_key_authenticates_every_service_end_to_end() {
    let key = SigningKey::es256("pem");
    let stranger = SigningKey::es256("pem");
    let admin = key.sign_without_kid(&claims("ops", Some(saga_tests::auth::ADMIN_SCOPE)));
    let customer = key.sign_without_kid(&claims(CUSTOMER, None));
    let forged = stranger.sign_without_kid(&claims(CUSTOMER, None));
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .env("AUTH_PUBLIC_KEY", &key.public_pem)
        .env("AUTH_ISSUER", ISSUER)
        .bearer(&admin)
        .start()
        .await;
    stack.all_ready().await;
    let client = reqwest::Client::new();

    // Without customer_id, the order is the token's subject's.
    let response = client
        .post(stack.url(Service::Order, "/api/orders"))
        .bearer_auth(&customer)
        .json(&json!({"items": [{"product_id": "product-A", "quantity": 1}], "total_amount": 5.0}))
        .send()
        .await
        .expect("order-service answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.expect("the order");
    assert_eq!(order["customer_id"], CUSTOMER, "{order}");
    let id = order["id"].as_str().expect("an id").to_owned();
    assert_eq!(stack.final_order(&id).await["status"], "COMPLETED");
    assert_accepted(&stack, &customer, &id).await;
    // The order ends before its last notice is recorded: wait for it, not for a time.
    eventually(
        "the OrderConfirmed notice",
        Duration::from_secs(30),
        || async {
            let notices = stack.notifications(&id).await;
            if notices.iter().any(|n| n == "OrderConfirmed") {
                Ok(())
            } else {
                Err(format!("{notices:?}"))
            }
        },
    )
    .await;

    let reads = [
        (Service::Order, format!("/api/orders/{id}"), &customer),
        (
            Service::Inventory,
            "/api/inventory/product-A".to_owned(),
            &customer,
        ),
        (Service::Payment, format!("/api/payments/{id}"), &admin),
        (
            Service::Notification,
            format!("/api/notifications?order_id={id}"),
            &admin,
        ),
    ];
    for (service, path, token) in &reads {
        let at = format!("{} {path}", service.name());
        for refused in [None, Some(&forged)] {
            let mut request = client.get(stack.url(*service, path));
            if let Some(token) = refused {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("the service answers");
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{at}");
        }
        let response = client
            .get(stack.url(*service, path))
            .bearer_auth(token)
            .send()
            .await
            .expect("the service answers");
        assert_eq!(response.status(), StatusCode::OK, "{at}");
        let body: Value = response.json().await.expect("a JSON body");
        match service {
            Service::Order => assert_eq!(body["status"], "COMPLETED", "{at}: {body}"),
            Service::Inventory => {
                assert_eq!(body["product_id"], "product-A", "{at}: {body}");
                assert_eq!(body["available"], 9, "{at}: {body}");
            }
            Service::Payment => assert_eq!(body["status"], "PROCESSED", "{at}: {body}"),
            Service::Notification => {
                let types: Vec<&str> = body
                    .as_array()
                    .unwrap_or_else(|| panic!("{at}: {body}"))
                    .iter()
                    .map(|n| n["event_type"].as_str().unwrap_or_default())
                    .collect();
                assert!(types.contains(&"OrderConfirmed"), "{at}: {body}");
            }
        }
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}
