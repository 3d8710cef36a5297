//! Interoperability with a real OpenID provider (CONTRACT §12): `oidc-provider` (npm,
//! under Node.js; `tests/oidc/`) issues JWT access tokens by the client-credentials grant,
//! signed RS256 with keys of its own. Given only its issuer (`AUTH_ISSUER`), the services
//! read its discovery document, take its keys from the `jwks_uri` there, and take each
//! client as the customer it names. A discovery document that points the keys at plain
//! http off this host is refused: the service stays unready until it points at a key set
//! that travels safely.

use reqwest::StatusCode;
use saga_tests::auth::{JwksServer, SigningKey, claims};
use saga_tests::{Service, TestStack, eventually};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The provider's process, stopped when dropped.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/oidc`, with its locked dependencies installed (`npm ci`) if they are not yet.
fn oidc_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc");
    if !dir.join("node_modules/oidc-provider").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status()
            .expect("npm runs (./scripts/test installs nodejs and npm)");
        assert!(
            status.success(),
            "npm ci in tests/oidc failed (needs the npm registry)"
        );
    }
    dir
}

fn start_provider() -> Provider {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("node")
        .arg("server.mjs")
        .arg(port.to_string())
        .current_dir(oidc_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs (./scripts/test installs nodejs)");
    let stdout = child.stdout.take().expect("its stdout");
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|line| line.starts_with("listening "))
        .expect("the provider says it listens");
    Provider {
        issuer: line.trim_start_matches("listening ").to_owned(),
        child,
    }
}

/// An access token by the client-credentials grant.
async fn token(provider: &Provider, client: &str, secret: &str, scope: Option<&str>) -> String {
    // A form body (the scopes here need no escaping but `:`).
    let mut form = "grant_type=client_credentials".to_owned();
    if let Some(scope) = scope {
        form.push_str(&format!(
            "&scope={}",
            scope.replace(':', "%3A").replace(' ', "+")
        ));
    }
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth(client, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("the provider answers")
        .json()
        .await
        .expect("a JSON token response");
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token: {answer}"))
        .to_owned()
}

#[tokio::test]
async fn tokens_of_a_real_openid_provider_are_accepted_by_its_discovery_document() {
    let provider = tokio::task::spawn_blocking(start_provider).await.unwrap();
    let discovery: Value = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        provider.issuer
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let issuer = discovery["issuer"].as_str().unwrap().to_owned();
    assert_eq!(issuer, provider.issuer);
    assert!(discovery["jwks_uri"].is_string(), "{discovery}");
    let admin = token(&provider, "ops-admin", "admin-secret", Some("orders:admin")).await;
    let customer = token(&provider, "customer-123", "customer-secret", None).await;

    // The issuer alone: no AUTH_JWKS_URL, no AUTH_PUBLIC_KEY.
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .env("AUTH_ISSUER", &issuer)
        .bearer(&admin)
        .start()
        .await;
    stack.all_ready().await;
    let client = reqwest::Client::new();
    let orders = stack.url(Service::Order, "/api/orders");

    // The customer client is the customer its token names (`sub`).
    let response = client
        .post(&orders)
        .bearer_auth(&customer)
        .json(&json!({"items": [{"product_id": "product-A", "quantity": 1}], "total_amount": 10.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["customer_id"], "customer-123");
    let id = order["id"].as_str().unwrap().to_owned();
    stack
        .place_order("customer-456", &[("product-A", 1)], 11.0)
        .await;
    let listed: Value = client
        .get(&orders)
        .bearer_auth(&customer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id.as_str(), "only its own order: {listed}");
    stack.final_order(&id).await;

    // orders:admin from the provider reads payments; the customer's token does not.
    let payment = stack.url(Service::Payment, &format!("/api/payments/{id}"));
    let as_customer = client
        .get(&payment)
        .bearer_auth(&customer)
        .send()
        .await
        .unwrap();
    assert_eq!(as_customer.status(), StatusCode::FORBIDDEN);
    let as_admin = client
        .get(&payment)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(as_admin.status(), StatusCode::OK);
    let payment: Value = as_admin.json().await.unwrap();
    assert_eq!(payment["order_id"], id.as_str(), "{payment}");
    assert_eq!(payment["status"], "PROCESSED", "{payment}");
    assert_eq!(payment["amount"], 10.0, "{payment}");
    // Without a token, nothing.
    assert_eq!(
        client.get(&orders).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    stack.final_orders(&stack.all_orders().await).await;
    stack.assert_invariants().await;
    stack.cleanup().await;
    drop(provider);
}

#[tokio::test]
async fn a_discovery_document_that_points_the_keys_at_plain_http_elsewhere_is_refused() {
    let key = SigningKey::es256("k1");
    let provider = JwksServer::start(&[&key]).await;
    // TEST-NET-1 (RFC 5737): never routed, and not this host.
    provider.point_discovery_at("http://192.0.2.10/jwks");
    let mut admin_claims = claims("ops-admin", Some("orders:admin"));
    admin_claims["iss"] = json!(provider.issuer);
    let admin = key.sign(&admin_claims);
    let stack = TestStack::builder()
        .service_env(Service::Order, "AUTH_ISSUER", &provider.issuer)
        .service_env(Service::Order, "AUTH_JWKS_MIN_INTERVAL_SECS", "1")
        .only(&[Service::Order])
        .bearer(&admin)
        .start()
        .await;
    let ready = || async { stack.get_json(Service::Order, "/ready").await };
    let not_ready = eventually(
        "/ready to say why the keys are refused",
        Duration::from_secs(20),
        || async {
            match ready().await {
                (StatusCode::SERVICE_UNAVAILABLE, body) if body.to_string().contains("https") => {
                    Ok(body)
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(not_ready.to_string().contains("192.0.2.10"), "{not_ready}");
    let (status, body) = stack.get_json(Service::Order, "/api/orders").await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "no keys, no token checked: {body}"
    );
    assert_eq!(provider.fetches(), 0, "the keys were never asked for");

    // Pointed at keys on this host, it loads them and takes the provider's tokens.
    provider.point_discovery_at(&provider.url);
    eventually(
        "/ready once the keys load",
        Duration::from_secs(30),
        || async {
            match ready().await {
                (StatusCode::OK, _) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let (status, body) = stack.get_json(Service::Order, "/api/orders").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut wrong_issuer = claims("ops-admin", Some("orders:admin"));
    wrong_issuer["iss"] = json!("https://id.saga.test");
    let response = reqwest::Client::new()
        .get(stack.url(Service::Order, "/api/orders"))
        .bearer_auth(key.sign(&wrong_issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    stack.cleanup().await;
}
