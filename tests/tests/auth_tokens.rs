//! Every bad bearer token gets 401 with a clear `{"detail"}` and a `WWW-Authenticate:
//! Bearer` challenge (with `error="invalid_token"` when a token was sent), never a 5xx,
//! and creates nothing (CONTRACT §12). Keys and tokens are made in each test.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use saga_tests::api::order_body;
use saga_tests::auth::{self, JwksServer, SigningKey, claims, now};
use saga_tests::{Service, TestStack};
use serde_json::{Value, json};

/// order-service alone, authentication on with `key` in its JWKS.
async fn stack_with(key: &SigningKey) -> (TestStack, JwksServer) {
    let jwks = JwksServer::start(&[key]).await;
    let stack = TestStack::builder()
        .only(&[Service::Order])
        .authenticated(&jwks.url, &key.admin("ops"))
        .start()
        .await;
    stack.all_ready().await;
    (stack, jwks)
}

/// `POST /api/orders` with this `Authorization` value (none for `None`).
async fn post_with(stack: &TestStack, authorization: Option<&str>) -> reqwest::Response {
    // A client of its own: the stack's sends the admin token by default.
    let mut request = reqwest::Client::new()
        .post(stack.url(Service::Order, "/api/orders"))
        .json(&order_body("customer-1", &[("product-A", 1)], 10.0));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.expect("order-service answers")
}

/// Asserts a 401 with a detail and the right challenge, and that nothing was created;
/// returns the detail.
async fn refused(stack: &TestStack, response: reqwest::Response, token_sent: bool) -> String {
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let detail = body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail: {body}"));
    assert!(challenge.starts_with("Bearer"), "challenge {challenge:?}");
    assert_eq!(
        challenge.contains("error=\"invalid_token\""),
        token_sent,
        "challenge {challenge:?}"
    );
    assert!(
        stack.all_orders().await.is_empty(),
        "a refused request created an order"
    );
    detail.to_owned()
}

async fn refused_token(stack: &TestStack, token: &str) -> String {
    let response = post_with(stack, Some(&format!("Bearer {token}"))).await;
    refused(stack, response, true).await
}

#[tokio::test]
async fn a_valid_token_places_an_order_as_its_subject() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let response = post_with(
        &stack,
        Some(&format!("Bearer {}", key.customer("customer-1"))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["customer_id"], "customer-1");
    stack.cleanup().await;
}

#[tokio::test]
async fn an_eddsa_token_is_accepted_as_well_as_es256() {
    let es = SigningKey::es256("es");
    let ed = SigningKey::ed25519("ed");
    let jwks = JwksServer::start(&[&es, &ed]).await;
    let stack = TestStack::builder()
        .only(&[Service::Order])
        .authenticated(&jwks.url, &es.admin("ops"))
        .start()
        .await;
    stack.all_ready().await;
    let response = post_with(
        &stack,
        Some(&format!("Bearer {}", ed.customer("customer-1"))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    stack.cleanup().await;
}

#[tokio::test]
async fn no_authorization_header_gets_401_with_a_bare_bearer_challenge() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let detail = refused(&stack, post_with(&stack, None).await, false).await;
    assert!(detail.contains("Authorization: Bearer"), "{detail}");
    stack.cleanup().await;
}

#[tokio::test]
async fn another_scheme_than_bearer_gets_401() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let response = post_with(
        &stack,
        Some(&format!("Basic {}", B64.encode("customer-1:pw"))),
    )
    .await;
    let detail = refused(&stack, response, false).await;
    assert!(detail.contains("Bearer"), "{detail}");
    stack.cleanup().await;
}

#[tokio::test]
async fn a_garbage_token_gets_401() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let detail = refused_token(&stack, "not-a-token-at-all").await;
    assert!(detail.contains("not a JWT"), "{detail}");
    stack.cleanup().await;
}

#[tokio::test]
async fn a_token_with_two_dots_but_no_base64_gets_401() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let detail = refused_token(&stack, "%%%.!!!.***").await;
    assert!(detail.contains("base64"), "{detail}");
    stack.cleanup().await;
}

#[tokio::test]
async fn an_unsigned_alg_none_token_gets_401() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let header = B64.encode(json!({"alg": "none", "typ": "JWT", "kid": "k1"}).to_string());
    let payload = B64.encode(claims("customer-1", Some(auth::ADMIN_SCOPE)).to_string());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}.c2ln"),
    ] {
        let detail = refused_token(&stack, &token).await;
        assert!(detail.contains("algorithm"), "{detail}");
    }
    stack.cleanup().await;
}

#[tokio::test]
async fn an_hmac_token_signed_with_the_public_key_gets_401() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    // Algorithm confusion: HS256 "signed" with what the server knows, the public key.
    let secrets = [
        key.public_pem.clone().into_bytes(),
        serde_json::to_vec(&key.jwk).unwrap(),
    ];
    for secret in secrets {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let token = jsonwebtoken::encode(
            &header,
            &claims("customer-1", Some(auth::ADMIN_SCOPE)),
            &EncodingKey::from_secret(&secret).unwrap(),
        )
        .unwrap();
        let detail = refused_token(&stack, &token).await;
        assert!(detail.contains("HS256"), "{detail}");
    }
    stack.cleanup().await;
}

#[tokio::test]
async fn a_token_whose_payload_was_changed_gets_401() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let token = key.customer("customer-1");
    let parts: Vec<&str> = token.split('.').collect();
    let forged = B64.encode(claims("customer-1", Some(auth::ADMIN_SCOPE)).to_string());
    let detail = refused_token(&stack, &format!("{}.{forged}.{}", parts[0], parts[2])).await;
    assert!(detail.contains("signature"), "{detail}");
    stack.cleanup().await;
}

#[tokio::test]
async fn a_token_signed_by_an_unknown_key_id_gets_401() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let stranger = SigningKey::es256("somebody-elses");
    let detail = refused_token(&stack, &stranger.customer("customer-1")).await;
    assert!(detail.contains("unknown key id"), "{detail}");
    // The right kid with the wrong key does not pass either.
    let impostor = SigningKey::es256("k1");
    let detail = refused_token(&stack, &impostor.customer("customer-1")).await;
    assert!(detail.contains("signature"), "{detail}");
    stack.cleanup().await;
}

#[tokio::test]
async fn an_expired_token_gets_401_past_the_60_s_leeway() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let mut expired = claims("customer-1", None);
    expired["exp"] = json!(now() - 120);
    let detail = refused_token(&stack, &key.sign(&expired)).await;
    assert!(detail.contains("expired"), "{detail}");
    // Within the leeway it is still good.
    let mut lately = claims("customer-1", None);
    lately["exp"] = json!(now() - 20);
    let response = post_with(&stack, Some(&format!("Bearer {}", key.sign(&lately)))).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    stack.cleanup().await;
}

#[tokio::test]
async fn a_token_not_valid_yet_gets_401() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let mut early = claims("customer-1", None);
    early["nbf"] = json!(now() + 600);
    let detail = refused_token(&stack, &key.sign(&early)).await;
    assert!(detail.contains("not valid yet"), "{detail}");
    stack.cleanup().await;
}

#[tokio::test]
async fn a_token_from_another_issuer_gets_401() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let mut other = claims("customer-1", None);
    other["iss"] = json!("https://evil.example");
    let detail = refused_token(&stack, &key.sign(&other)).await;
    assert!(detail.contains("issuer"), "{detail}");
    let mut none = claims("customer-1", None);
    none.as_object_mut().unwrap().remove("iss");
    let detail = refused_token(&stack, &key.sign(&none)).await;
    assert!(detail.contains("iss"), "{detail}");
    stack.cleanup().await;
}

#[tokio::test]
async fn a_token_for_another_audience_gets_401() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let mut other = claims("customer-1", None);
    other["aud"] = json!(["billing-api"]);
    let detail = refused_token(&stack, &key.sign(&other)).await;
    assert!(detail.contains("audience"), "{detail}");
    // A list that contains ours is fine.
    let mut shared = claims("customer-1", None);
    shared["aud"] = json!(["billing-api", auth::AUDIENCE]);
    let response = post_with(&stack, Some(&format!("Bearer {}", key.sign(&shared)))).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    stack.cleanup().await;
}

#[tokio::test]
async fn a_token_in_the_query_string_is_never_read() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let token = key.admin("ops");
    for parameter in ["access_token", "token", "jwt"] {
        let response = reqwest::Client::new()
            .get(stack.url(Service::Order, &format!("/api/orders?{parameter}={token}")))
            .send()
            .await
            .unwrap();
        refused(&stack, response, false).await;
    }
    stack.cleanup().await;
}

#[tokio::test]
async fn a_64_kib_authorization_header_is_refused_without_harm() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let huge = format!(
        "Bearer {}.{}.{}",
        "a".repeat(32 * 1024),
        "b".repeat(16 * 1024),
        "c".repeat(16 * 1024)
    );
    let response = post_with(&stack, Some(&huge)).await;
    let status = response.status();
    assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "{status}"
    );
    if status == StatusCode::UNAUTHORIZED {
        refused(&stack, response, true).await;
    }
    // The service is still there and still checks tokens.
    let response = post_with(
        &stack,
        Some(&format!("Bearer {}", key.customer("customer-1"))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    stack.cleanup().await;
}

#[tokio::test]
async fn a_token_without_a_subject_gets_401() {
    let key = SigningKey::es256("k1");
    let (stack, _jwks) = stack_with(&key).await;
    let mut anonymous = claims("customer-1", None);
    anonymous.as_object_mut().unwrap().remove("sub");
    let detail = refused_token(&stack, &key.sign(&anonymous)).await;
    assert!(detail.contains("sub"), "{detail}");
    stack.cleanup().await;
}
