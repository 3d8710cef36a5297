//! Keys as a real deployment has them (CONTRACT §12): the JWKS is fetched at start
//! (`/ready` 503 until it is), refreshed, fetched again for an unknown `kid` at most once
//! per 30 s however many such tokens arrive, kept while the endpoint is down, and rotated
//! without refusing a token that is still valid. The JWKS stub counts every fetch.

use reqwest::StatusCode;
use saga_tests::auth::{JwksServer, SigningKey, claims};
use saga_tests::{Service, TestStack, eventually};
use std::time::{Duration, Instant};

/// order-service alone against `jwks`, with extra variables.
async fn order_service(jwks: &JwksServer, admin: &str, extra: &[(&str, &str)]) -> TestStack {
    let mut builder = TestStack::builder()
        .only(&[Service::Order])
        .authenticated(&jwks.url, admin);
    for (name, value) in extra {
        builder = builder.env(name, value);
    }
    builder.start().await
}

/// The status of `GET /api/orders` with `token`.
async fn status_with(stack: &TestStack, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(stack.url(Service::Order, "/api/orders"))
        .bearer_auth(token)
        .send()
        .await
        .expect("order-service answers")
        .status()
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
    let stack = order_service(&jwks, &key.admin("ops"), &[]).await;
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
        status_with(&stack, &key.customer("customer-1")).await,
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
        status_with(&stack, &key.customer("customer-1")).await,
        StatusCode::OK
    );
    stack.cleanup().await;
}

#[tokio::test]
async fn a_flood_of_unknown_key_ids_fetches_the_jwks_at_most_once_per_30_s() {
    let key = SigningKey::es256("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let stack = order_service(&jwks, &key.admin("ops"), &[]).await;
    stack.all_ready().await;
    // Past the default 30 s since the first fetch, one unknown kid may fetch again.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let before = jwks.fetches();
    let started = Instant::now();
    let client = reqwest::Client::new();
    let url = stack.url(Service::Order, "/api/orders");
    let mut statuses = Vec::new();
    for round in 0..10 {
        let requests = (0..30).map(|i| {
            let stranger = SigningKey::es256(&format!("random-{round}-{i}"));
            let token = stranger.sign(&claims("customer-1", None));
            client.get(&url).bearer_auth(token).send()
        });
        for response in futures_util::future::join_all(requests).await {
            statuses.push(response.expect("order-service answers").status());
        }
    }
    let elapsed = started.elapsed();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    let fetched = jwks.fetches() - before;
    let allowed = 1 + (elapsed.as_secs() / 30) as usize;
    println!("300 tokens with unknown kids in {elapsed:?}: {fetched} JWKS fetch(es)");
    assert!(
        fetched <= allowed,
        "{fetched} fetches in {elapsed:?} (at most {allowed})"
    );
    // The known key still works.
    assert_eq!(
        status_with(&stack, &key.customer("customer-1")).await,
        StatusCode::OK
    );
    stack.cleanup().await;
}

#[tokio::test]
async fn the_key_set_is_fetched_again_every_refresh_period() {
    let key = SigningKey::es256("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let stack = order_service(&jwks, &key.admin("ops"), &[("AUTH_JWKS_REFRESH_SECS", "1")]).await;
    stack.all_ready().await;
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
    stack.cleanup().await;
}

#[tokio::test]
async fn a_jwks_outage_keeps_the_cached_keys_working() {
    let key = SigningKey::es256("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let stack = order_service(
        &jwks,
        &key.admin("ops"),
        &[
            ("AUTH_JWKS_REFRESH_SECS", "1"),
            ("AUTH_JWKS_MIN_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    stack.all_ready().await;
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
    assert_eq!(
        status_with(&stack, &key.customer("customer-1")).await,
        StatusCode::OK
    );
    // An unknown kid meanwhile is a 401, not a 5xx.
    let stranger = SigningKey::es256("k2");
    assert_eq!(
        status_with(&stack, &stranger.customer("customer-1")).await,
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

#[tokio::test]
async fn keys_rotate_without_refusing_a_token_that_is_still_valid() {
    let old = SigningKey::es256("2026-old");
    let new = SigningKey::ed25519("2026-new");
    let jwks = JwksServer::start(&[&old]).await;
    let stack = order_service(
        &jwks,
        &old.admin("ops"),
        &[
            ("AUTH_JWKS_REFRESH_SECS", "2"),
            ("AUTH_JWKS_MIN_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    stack.all_ready().await;
    let old_token = old.customer("customer-1");
    let new_token = new.customer("customer-1");
    assert_eq!(status_with(&stack, &old_token).await, StatusCode::OK);

    // The provider publishes its next key beside the old one and starts signing with it:
    // the first token naming it fetches the set (no wait for the periodic refresh).
    jwks.publish(&[&old, &new]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status_with(&stack, &new_token).await, StatusCode::OK);
    assert_eq!(status_with(&stack, &old_token).await, StatusCode::OK);

    // The old key is withdrawn: its tokens stop working at the next refresh, the new stay.
    jwks.publish(&[&new]);
    eventually(
        "the old key to be dropped",
        Duration::from_secs(15),
        || async {
            match status_with(&stack, &old_token).await {
                StatusCode::UNAUTHORIZED => Ok(()),
                status => Err(status.to_string()),
            }
        },
    )
    .await;
    assert_eq!(status_with(&stack, &new_token).await, StatusCode::OK);
    stack.cleanup().await;
}
