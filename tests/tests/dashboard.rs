//! The dashboard, in a real (headless) browser: place an order through the page and
//! watch it complete.

use saga_tests::browser::Browser;
use saga_tests::{Service, TestStack, eventually};
use std::time::Duration;

fn save_to(stack: &TestStack, name: &str) -> Vec<std::path::PathBuf> {
    saga_tests::browser::screenshot_paths(stack, name)
}

#[tokio::test]
async fn an_order_placed_in_the_dashboard_is_seen_to_complete() {
    let stack = TestStack::start().await;
    stack
        .place_order("customer-7", &[("product-C", 1)], 12.0)
        .await;
    let browser = Browser::start().await;
    browser.open(&stack.url(Service::Order, "/")).await;
    eventually(
        "the dashboard's first refresh",
        Duration::from_secs(20),
        || async {
            let updated = browser
                .eval("return document.getElementById('updated').textContent")
                .await;
            if updated.as_str().unwrap_or_default().starts_with("updated") {
                Ok(())
            } else {
                Err(updated.to_string())
            }
        },
    )
    .await;

    browser.fill("#customer", "customer-browser").await;
    browser.fill("#product", "product-A").await;
    browser.fill("#quantity", "2").await;
    browser.fill("#total", "42.50").await;
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
    let order = stack.order(&order_id).await;
    assert_eq!(order["customer_id"], "customer-browser");
    assert_eq!(order["total_amount"], 42.5);
    eventually(
        "the stock table to show the reservation",
        Duration::from_secs(10),
        || async {
            let text = browser
                .eval("return document.getElementById('stock').innerText")
                .await;
            let text = text.as_str().unwrap_or_default().to_owned();
            if text.contains("product-A\t8\t2") {
                Ok(())
            } else {
                Err(text)
            }
        },
    )
    .await;
    let rows = browser
        .eval("return document.querySelectorAll('#orders tr.order').length")
        .await;
    assert_eq!(rows, 2);

    // The timeline of the order, as the page shows it after a click on its row.
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
    for path in save_to(&stack, "dashboard.png") {
        browser.screenshot(&path).await;
    }
    browser.open(&stack.url(Service::Order, "/docs/")).await;
    eventually(
        "Swagger UI to render the operations",
        Duration::from_secs(20),
        || async {
            let count = browser
                .eval("return document.querySelectorAll('.opblock').length")
                .await;
            if count.as_u64().unwrap_or(0) >= 8 {
                Ok(())
            } else {
                Err(count.to_string())
            }
        },
    )
    .await;
    for path in save_to(&stack, "api-docs.png") {
        browser.screenshot(&path).await;
    }
    drop(browser);

    assert!(
        stack
            .metric_sum(Service::Order, "http_requests_total")
            .await
            >= 3.0
    );
    // The page polled with If-None-Match (CONTRACT §14): its unchanged polls were 304s.
    let metrics = stack
        .http
        .get(stack.url(Service::Order, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let not_modified: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("http_requests_total{") && l.contains("status=\"304\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(not_modified >= 1.0, "no poll was answered 304:\n{metrics}");
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn an_order_is_cancelled_from_the_dashboard_after_one_confirmation() {
    let stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .start()
        .await;
    let order = stack
        .place_order("customer-cancel", &[("product-A", 2)], 20.0)
        .await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(stack.final_order(&id).await["status"], "COMPLETED");
    let browser = Browser::start().await;
    browser.open(&stack.url(Service::Order, "/")).await;
    let button = format!("button[data-cancel-order='{id}']");
    eventually("the Cancel button", Duration::from_secs(20), || async {
        let found = browser
            .eval(&format!("return !!document.querySelector(\"{button}\")"))
            .await;
        found
            .as_bool()
            .filter(|b| *b)
            .ok_or_else(|| found.to_string())
    })
    .await;

    // The first click only asks; the order is untouched until the second.
    browser.click(&button).await;
    let confirm = format!("{button}[data-confirm='1']");
    eventually("the confirmation", Duration::from_secs(10), || async {
        let found = browser
            .eval(&format!("return !!document.querySelector(\"{confirm}\")"))
            .await;
        found
            .as_bool()
            .filter(|b| *b)
            .ok_or_else(|| found.to_string())
    })
    .await;
    assert_eq!(stack.order(&id).await["status"], "COMPLETED");
    browser.click(&confirm).await;

    eventually("the page to show it cancelled", Duration::from_secs(20), || async {
        let shown = browser
            .eval(&format!(
                "const row = document.querySelector(\"tr[data-order-id='{id}']\"); \
                 return [row ? row.innerText : '', document.getElementById('cancel-status').textContent];"
            ))
            .await;
        let row = shown[0].as_str().unwrap_or_default();
        let status = shown[1].as_str().unwrap_or_default();
        if row.contains("CANCELLED") && status.contains("cancelled") {
            Ok(())
        } else {
            Err(shown.to_string())
        }
    })
    .await;
    let cancelled = stack.order(&id).await;
    assert_eq!(cancelled["cancellation_reason"], "CUSTOMER_CANCELLED");
    // A cancelled order offers no Cancel button.
    let left = browser
        .eval(&format!(
            "return document.querySelectorAll(\"{button}\").length"
        ))
        .await;
    assert_eq!(left, 0);
    drop(browser);
    stack.assert_invariants().await;
    assert_eq!(stack.stock().await["product-A"], (10, 0));
    stack.cleanup().await;
}

/// Runs `script` in the page until it returns a non-empty string, which it returns.
async fn wait_in_page(browser: &Browser, what: &str, script: &str) -> String {
    eventually(what, Duration::from_secs(30), || async {
        let value = browser.eval(script).await;
        match value.as_str() {
            Some(text) if !text.is_empty() => Ok(text.to_owned()),
            _ => Err(value.to_string()),
        }
    })
    .await
}

/// Puts `text` into the edit dialog's body, as an operator's paste would.
async fn type_body(browser: &Browser, body: &serde_json::Value) {
    let text = serde_json::to_string_pretty(body).unwrap();
    let script = format!(
        "document.getElementById('edit-body').value = {}; return null;",
        serde_json::to_string(&text).unwrap()
    );
    browser.eval(&script).await;
}

#[tokio::test]
async fn an_operator_works_by_group_edits_a_poison_message_and_reads_the_log_in_the_dashboard() {
    use saga_tests::dead_letters::{
        corrupt_order_created, dead_letter_directly, restart_order_service,
    };
    use saga_tests::stack::TEST_ADMIN_TOKEN;
    use serde_json::json;

    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .start()
        .await;
    // A client bug's OrderCreated (a quantity as a string), and an outage's three failures.
    stack.kill(Service::Inventory).await;
    let order = stack
        .place_order("customer-console", &[("product-A", 1)], 5.0)
        .await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let bug = json!({"items": [{"product_id": "product-A", "quantity": "1"}]});
    let (event_id, original) = corrupt_order_created(&stack, &bug).await;
    stack.restart(Service::Inventory, 1).await;
    restart_order_service(&mut stack).await;
    let outage: Vec<_> = (0..3)
        .map(|_| {
            let id = uuid::Uuid::new_v4().to_string();
            let error = format!("handler failed: mail relay refused order {id}");
            (id, Some("PaymentProcessed"), json!({}), error)
        })
        .collect();
    dead_letter_directly(&stack, Service::Notification, &outage).await;

    let browser = Browser::start().await;
    browser.open(&stack.url(Service::Order, "/")).await;
    browser.fill("#admin-token", TEST_ADMIN_TOKEN).await;
    browser.click("#token-save").await;
    let groups = wait_in_page(
        &browser,
        "two groups",
        "const rows = [...document.querySelectorAll('tr.group')]; \
         return rows.length === 2 ? rows.map(r => r.dataset.count + ' ' + r.querySelector('.err').textContent).join('\\n') : '';",
    )
    .await;
    assert!(
        groups.contains("3 handler failed: mail relay refused order #"),
        "{groups}"
    );

    // The outage's group, discarded with the confirm click.
    let group = browser
        .eval("return [...document.querySelectorAll('tr.group')].find(r => r.dataset.count === '3').dataset.group")
        .await;
    let discard = format!(
        "button[data-action='discard-group'][data-group='{}']",
        group.as_str().unwrap()
    );
    browser.click(&discard).await;
    let asked = wait_in_page(
        &browser,
        "the confirmation",
        &format!("const b = document.querySelector(\"{discard}[data-confirm='1']\"); return b ? b.textContent : '';"),
    )
    .await;
    assert_eq!(asked, "Really discard the group?");
    browser.click(&format!("{discard}[data-confirm='1']")).await;
    wait_in_page(
        &browser,
        "one group left",
        "return document.querySelectorAll('tr.group').length === 1 ? 'yes' : '';",
    )
    .await;

    // The poison OrderCreated, edited: first still wrong, the schema's errors in place.
    let edit = format!("button[data-action='edit'][data-message-id='{event_id}']");
    wait_in_page(
        &browser,
        "the edit button",
        &format!("return document.querySelector(\"{edit}\") ? 'yes' : '';"),
    )
    .await;
    browser.click(&edit).await;
    let mut wrong = original.clone();
    wrong["items"][0]["quantity"] = json!("1");
    type_body(&browser, &wrong).await;
    browser.click("#edit-send").await;
    let errors = wait_in_page(
        &browser,
        "the schema's errors in the dialog",
        "return document.getElementById('edit-errors').innerText;",
    )
    .await;
    assert!(errors.contains("items/0/quantity"), "{errors}");
    browser
        .eval("document.getElementById('console').scrollIntoView(); return null;")
        .await;
    for path in save_to(&stack, "operator-console-edit.png") {
        browser.screenshot(&path).await;
    }
    assert_eq!(stack.order(&order_id).await["status"], "PENDING");
    type_body(&browser, &original).await;
    browser.click("#edit-send").await;
    let status = wait_in_page(
        &browser,
        "the edit to go through",
        "return document.getElementById('edit-dialog').open ? '' : document.getElementById('console-status').textContent;",
    )
    .await;
    assert!(status.starts_with("Edited and replayed"), "{status}");
    assert_eq!(stack.final_order(&order_id).await["status"], "COMPLETED");

    // The log shows both actions, newest first.
    let actions = wait_in_page(
        &browser,
        "the operator log",
        "const rows = [...document.querySelectorAll('tr.log-entry')]; \
         return rows.length === 2 ? rows.map(r => r.dataset.action).join(',') : '';",
    )
    .await;
    assert_eq!(actions, "edit,discard-group");
    for path in save_to(&stack, "operator-console.png") {
        browser.screenshot(&path).await;
    }
    drop(browser);
    stack.assert_invariants().await;
    stack.cleanup().await;
}
