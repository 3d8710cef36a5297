//! The dashboard with authentication on (CONTRACT §12), in headless Chromium: the API
//! answers 401, so the page asks for a token; with a customer's token it shows that
//! customer's orders only and places orders in its name; with an `orders:admin` token, all.
//! Its polls revalidate with If-None-Match (§14), so most of them are 304s.

use saga_tests::auth::{JwksServer, SigningKey};
use saga_tests::browser::Browser;
use saga_tests::{Service, TestStack, eventually};
use serde_json::Value;
use std::time::Duration;

/// The customers of the rows the page shows.
async fn shown_customers(browser: &Browser) -> Vec<String> {
    let cells = browser
        .eval("return [...document.querySelectorAll('#orders tr.order')].map(r => r.children[1].textContent)")
        .await;
    cells
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect()
}

/// `http_requests_total` of order-service for one path and status.
async fn requests(stack: &TestStack, path: &str, status: &str) -> f64 {
    let text = stack
        .http
        .get(stack.url(Service::Order, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with("http_requests_total{"))
        .filter(|line| {
            line.contains(&format!("path=\"{path}\""))
                && line.contains(&format!("status=\"{status}\""))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn the_dashboard_asks_for_a_token_and_shows_only_that_customers_orders() {
    let key = SigningKey::es256("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .authenticated(&jwks.url, &key.admin("ops-admin"))
        .start()
        .await;
    stack.all_ready().await;
    for customer in ["customer-123", "customer-other", "customer-other"] {
        let order = stack.place_order(customer, &[("product-A", 1)], 10.0).await;
        stack.final_order(order["id"].as_str().unwrap()).await;
    }

    let browser = Browser::start().await;
    browser.open(&stack.url(Service::Order, "/")).await;
    eventually("the page to ask for a token", Duration::from_secs(20), || async {
        let asked = browser
            .eval("return !document.getElementById('sign-in').hidden && document.getElementById('updated').textContent")
            .await;
        match asked.as_str() {
            Some(text) if text.contains("sign in") => Ok(()),
            _ => Err(asked.to_string()),
        }
    })
    .await;
    assert!(
        shown_customers(&browser).await.is_empty(),
        "orders shown before signing in"
    );

    browser
        .fill("#api-token", &key.customer("customer-123"))
        .await;
    browser.click("#api-token-save").await;
    eventually(
        "the customer's own orders",
        Duration::from_secs(20),
        || async {
            let shown = shown_customers(&browser).await;
            if shown == ["customer-123"] {
                Ok(())
            } else {
                Err(format!("{shown:?}"))
            }
        },
    )
    .await;
    let who = browser
        .eval("return document.getElementById('signed-in-as').dataset.subject")
        .await;
    assert_eq!(who, "customer-123");

    // An order placed from the page is the customer's, and completes there.
    browser.fill("#product", "product-A").await;
    browser.fill("#quantity", "1").await;
    browser.fill("#total", "12.00").await;
    browser.click("#place-order").await;
    let order_id = eventually("the placed order to complete on the page", Duration::from_secs(30), || async {
        let shown = browser
            .eval("const p = document.getElementById('last-order'); return [p.dataset.orderId || '', p.dataset.status || ''];")
            .await;
        match (shown[0].as_str(), shown[1].as_str()) {
            (Some(id), Some("COMPLETED")) if !id.is_empty() => Ok(id.to_owned()),
            _ => Err(shown.to_string()),
        }
    })
    .await;
    assert_eq!(stack.order(&order_id).await["customer_id"], "customer-123");
    eventually(
        "both of the customer's orders",
        Duration::from_secs(20),
        || async {
            let shown = shown_customers(&browser).await;
            if shown == ["customer-123", "customer-123"] {
                Ok(())
            } else {
                Err(format!("{shown:?}"))
            }
        },
    )
    .await;
    // Its timeline and saga flow, through the token too.
    browser
        .click(&format!("tr[data-order-id='{order_id}']"))
        .await;
    eventually("the timeline", Duration::from_secs(10), || async {
        let text = browser
            .eval("return document.getElementById('timeline').innerText")
            .await;
        let text = text.as_str().unwrap_or_default().to_owned();
        if text.contains("OrderConfirmed") {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;

    // The polls revalidate: unchanged state comes back as 304s.
    eventually("polls answered 304", Duration::from_secs(20), || async {
        let count = browser
            .eval("return Number(document.getElementById('updated').dataset.notModified || 0)")
            .await;
        if count.as_u64().unwrap_or(0) >= 3 {
            Ok(())
        } else {
            Err(count.to_string())
        }
    })
    .await;
    eventually(
        "the dashboard's state answered 304",
        Duration::from_secs(20),
        || async {
            let count = requests(&stack, "/api/dashboard", "304").await;
            if count >= 3.0 {
                Ok(())
            } else {
                Err(format!("{count} 304s of /api/dashboard"))
            }
        },
    )
    .await;
    for path in saga_tests::browser::screenshot_paths(&stack, "dashboard-signed-in.png") {
        browser.screenshot(&path).await;
    }

    // Signed out and in again as orders:admin: every customer's orders.
    browser.click("#api-token-forget").await;
    browser.fill("#api-token", &key.admin("ops-admin")).await;
    browser.click("#api-token-save").await;
    eventually(
        "every customer's orders",
        Duration::from_secs(20),
        || async {
            let mut shown = shown_customers(&browser).await;
            shown.sort();
            if shown
                == [
                    "customer-123",
                    "customer-123",
                    "customer-other",
                    "customer-other",
                ]
            {
                Ok(())
            } else {
                Err(format!("{shown:?}"))
            }
        },
    )
    .await;
    let admin: Value = browser
        .eval("return document.getElementById('signed-in-as').dataset.admin")
        .await;
    assert_eq!(admin, "1");

    // A token that is refused sends the page back to asking.
    browser.click("#api-token-forget").await;
    let stranger = SigningKey::es256("somebody-elses");
    browser
        .fill("#api-token", &stranger.customer("customer-123"))
        .await;
    browser.click("#api-token-save").await;
    eventually("the refusal shown", Duration::from_secs(20), || async {
        let text = browser
            .eval("return document.getElementById('sign-in-error').textContent")
            .await;
        let text = text.as_str().unwrap_or_default().to_owned();
        if text.contains("unknown key id") {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;
    drop(browser);
    stack.assert_invariants().await;
    stack.cleanup().await;
}
