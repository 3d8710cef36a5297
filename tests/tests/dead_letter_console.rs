//! The failed-message console (issue 13): order-service shows and acts on every service's
//! dead letters (`/admin/dead-letters…`), in the API and on the dashboard page.

use lapin::BasicProperties;
use reqwest::{Method, StatusCode};
use saga_tests::browser::{Browser, screenshot_paths};
use saga_tests::stack::TEST_ADMIN_TOKEN;
use saga_tests::{Service, TestStack, eventually};
use serde_json::Value;
use std::time::Duration;

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `GET /admin/dead-letters`, the part about one service.
async fn console_queue(stack: &TestStack, service: &str) -> Value {
    let (status, body) =
        answer(stack.admin(Method::GET, Service::Order, "/admin/dead-letters")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|queue| queue["service"] == service)
        .unwrap_or_else(|| panic!("no {service} in {body}"))
        .clone()
}

fn ids(queue: &Value) -> Vec<String> {
    queue["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn wait_for_depth(stack: &TestStack, service: &str, depth: u64) -> Value {
    eventually(
        &format!("{depth} dead letters of {service}"),
        Duration::from_secs(30),
        || async {
            let queue = console_queue(stack, service).await;
            if queue["depth"] == depth
                && queue["messages"].as_array().unwrap().len() as u64 == depth
            {
                Ok(queue)
            } else {
                Err(queue.to_string())
            }
        },
    )
    .await
}

/// Publishes bodies inventory-service cannot parse, with message ids, one by one.
async fn poison(stack: &TestStack, ids: &[&str]) {
    let json = BasicProperties::default().with_content_type("application/json".into());
    for id in ids {
        stack
            .broker
            .publish(
                "order.created",
                format!("not json: {id}").as_bytes(),
                json.clone().with_message_id((*id).into()),
            )
            .await;
    }
}

#[tokio::test]
async fn console_routes_are_admin_routes_and_name_real_messages() {
    let mut stack = TestStack::start().await;
    poison(&stack, &["poison-1"]).await;
    wait_for_depth(&stack, "inventory", 1).await;

    let url = |path: &str| stack.url(Service::Order, path);
    let routes = [
        (Method::GET, "/admin/dead-letters"),
        (Method::POST, "/admin/dead-letters/inventory/replay"),
        (
            Method::POST,
            "/admin/dead-letters/inventory/poison-1/replay",
        ),
        (
            Method::POST,
            "/admin/dead-letters/inventory/poison-1/discard",
        ),
    ];
    for (method, path) in &routes {
        let (status, body) = answer(stack.http.request(method.clone(), url(path))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        let (status, body) = answer(
            stack
                .http
                .request(method.clone(), url(path))
                .bearer_auth("wrong")
                .header("x-requested-by", "t"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert_eq!(body["detail"], "admin token is wrong");
        if *method == Method::POST {
            // The token alone is not enough for an action: a cross-site form could send it.
            let (status, body) =
                answer(stack.http.post(url(path)).bearer_auth(TEST_ADMIN_TOKEN)).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}: {body}");
        }
    }
    for path in [
        "/admin/dead-letters/nowhere/replay",
        "/admin/dead-letters/nowhere/poison-1/replay",
        "/admin/dead-letters/inventory/no-such-message/replay",
        "/admin/dead-letters/inventory/no-such-message/discard",
        // It is inventory-service's dead letter, not payment-service's.
        "/admin/dead-letters/payment/poison-1/discard",
    ] {
        let (status, body) = answer(stack.admin(Method::POST, Service::Order, path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(
            body["detail"].as_str().unwrap().starts_with("no "),
            "{body}"
        );
    }
    let (status, body) =
        answer(stack.admin(Method::GET, Service::Order, "/admin/dead-letters?limit=501")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Nothing above touched the dead letter.
    let queue = wait_for_depth(&stack, "inventory", 1).await;
    assert_eq!(ids(&queue), ["poison-1"]);
    stack
        .expected_dead_letters
        .insert(Service::Inventory, vec!["poison-1".to_owned()]);
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn without_an_admin_token_the_console_is_off() {
    let stack = TestStack::builder()
        .only(&[Service::Order])
        .env("ADMIN_TOKEN", "")
        .start()
        .await;
    for (method, path) in [
        (Method::GET, "/admin/dead-letters"),
        (Method::POST, "/admin/dead-letters/order/replay"),
        (Method::POST, "/admin/dead-letters/order/some-id/discard"),
    ] {
        let (status, body) = answer(stack.admin(method, Service::Order, path)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["detail"], "admin routes are off: set ADMIN_TOKEN");
    }
    stack.cleanup().await;
}

#[tokio::test]
async fn replaying_or_discarding_one_dead_letter_keeps_the_others_in_order() {
    let mut stack = TestStack::start().await;
    poison(&stack, &["poison-1", "poison-2", "poison-3", "poison-4"]).await;
    let queue = wait_for_depth(&stack, "inventory", 4).await;
    // Handled concurrently, they may be dead-lettered in any order: take the queue's.
    let before = ids(&queue);
    for letter in queue["messages"].as_array().unwrap() {
        assert_eq!(letter["routing_key"], "order.created", "{letter}");
        assert_eq!(letter["attempts"], 1, "{letter}");
        assert!(
            letter["error"].as_str().unwrap().contains("cannot parse"),
            "{letter}"
        );
        // Dead-lettered at its first failure: the first failure is the last.
        assert!(letter["failed_at"].is_string(), "{letter}");
        assert_eq!(letter["first_failed_at"], letter["failed_at"], "{letter}");
    }

    // Replayed, the second goes back to inventory-service's queue under its routing key,
    // fails again and lands behind the others, which have not moved.
    let replay = format!("/admin/dead-letters/inventory/{}/replay", before[1]);
    let (status, body) = answer(stack.admin(Method::POST, Service::Order, &replay)).await;
    assert_eq!(
        (status, &body["replayed"]),
        (StatusCode::OK, &1.into()),
        "{body}"
    );
    let expected = [&before[0], &before[2], &before[3], &before[1]].map(String::clone);
    let queue = eventually(
        "the replayed dead letter back at the end",
        Duration::from_secs(30),
        || async {
            let queue = console_queue(&stack, "inventory").await;
            if ids(&queue) == expected {
                Ok(queue)
            } else {
                Err(queue.to_string())
            }
        },
    )
    .await;
    let again = &queue["messages"][3];
    assert_eq!(again["routing_key"], "order.created", "{again}");
    assert_eq!(
        again["attempts"], 1,
        "a replay starts its retries afresh: {again}"
    );
    assert!(
        stack
            .logs(Service::Inventory)
            .matches("cannot parse the message")
            .count()
            >= 5,
        "the replayed message was not consumed again"
    );

    let discard = format!(
        "/admin/dead-letters/inventory-service/{}/discard",
        before[2]
    );
    let (status, body) = answer(stack.admin(Method::POST, Service::Order, &discard)).await;
    assert_eq!(
        (status, &body["discarded"]),
        (StatusCode::OK, &1.into()),
        "{body}"
    );
    let queue = wait_for_depth(&stack, "inventory", 3).await;
    assert_eq!(
        ids(&queue),
        [&before[0], &before[3], &before[1]].map(String::clone)
    );
    // inventory-service's own route sees the same queue.
    let (status, own) = answer(stack.admin(Method::GET, Service::Inventory, "/admin/dlq")).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(
        ids(&own),
        [&before[0], &before[3], &before[1]].map(String::clone)
    );

    stack.expected_dead_letters.insert(
        Service::Inventory,
        [&before[0], &before[3], &before[1]]
            .map(String::clone)
            .to_vec(),
    );
    stack.assert_invariants().await;
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

async fn wait_for_page_depth(browser: &Browser, service: &str, depth: u32) {
    let script = format!(
        "const q = document.querySelector(\".dlq[data-service='{service}']\"); \
         return q && q.dataset.depth === '{depth}' && q.querySelectorAll('tr.dead-letter').length === {depth} ? 'yes' : '';"
    );
    wait_in_page(
        browser,
        &format!("the page to show {depth} dead letters of {service}"),
        &script,
    )
    .await;
}

/// Clicks an action's button, checks it asks for a confirmation, and confirms.
async fn confirm(browser: &Browser, selector: &str, question: &str) {
    browser.click(selector).await;
    let asked = format!("{selector}[data-confirm='1']");
    let text = wait_in_page(
        browser,
        "the confirmation",
        &format!("const b = document.querySelector(\"{asked}\"); return b ? b.textContent : '';"),
    )
    .await;
    assert_eq!(text, question);
    browser.click(&asked).await;
}

#[tokio::test]
async fn an_operator_replays_and_discards_dead_letters_from_the_dashboard() {
    let stack = TestStack::start().await;
    // Three dead letters in two services: notification-service refuses every message of
    // one order (after its retries), inventory-service cannot parse one.
    let notifications = stack.db(Service::Notification).await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(&notifications)
    .await
    .unwrap();
    poison(&stack, &["poison-console"]).await;
    let order = stack
        .place_order("customer-console", &[("product-A", 1)], 5.0)
        .await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(stack.final_order(&order_id).await["status"], "COMPLETED");
    let queue = wait_for_depth(&stack, "notification", 2).await;
    wait_for_depth(&stack, "inventory", 1).await;
    let mut processed = None;
    for letter in queue["messages"].as_array().unwrap() {
        assert_eq!(letter["attempts"], 4, "{letter}");
        // Failed first, retried three times (100 + 200 + 400 ms), failed for the last time.
        let first = letter["first_failed_at"].as_str().unwrap();
        let last = letter["failed_at"].as_str().unwrap();
        let gap = chrono::DateTime::parse_from_rfc3339(last).unwrap()
            - chrono::DateTime::parse_from_rfc3339(first).unwrap();
        assert!(gap >= chrono::TimeDelta::milliseconds(700), "{letter}");
        if letter["event_type"] == "PaymentProcessed" {
            processed = letter["message_id"].as_str().map(str::to_owned);
        }
    }
    let processed = processed.expect("PaymentProcessed is dead-lettered");

    let browser = Browser::start().await;
    browser.open(&stack.url(Service::Order, "/")).await;
    wait_in_page(
        &browser,
        "the console to ask for the token",
        "return document.getElementById('console-prompt').hidden ? '' : document.getElementById('console-prompt').textContent;",
    )
    .await;
    browser.fill("#admin-token", "not-the-token").await;
    browser.click("#token-save").await;
    let refused = wait_in_page(
        &browser,
        "the console to refuse the token",
        "return document.getElementById('console-error').textContent;",
    )
    .await;
    assert!(refused.contains("admin token is wrong"), "{refused}");
    browser.fill("#admin-token", TEST_ADMIN_TOKEN).await;
    browser.click("#token-save").await;
    wait_for_page_depth(&browser, "notification", 2).await;
    wait_for_page_depth(&browser, "inventory", 1).await;
    let row = browser
        .eval(&format!(
            "const r = document.querySelector(\"tr.dead-letter[data-message-id='{processed}']\"); \
             return [r.querySelector('.err').textContent, r.querySelector('.attempts').textContent, \
                     r.querySelector('.first-failed').title, r.querySelector('.last-failed').title];"
        ))
        .await;
    assert!(
        row[0].as_str().unwrap().contains("injected failure"),
        "{row}"
    );
    assert_eq!(row[1], "4", "{row}");
    for at in [&row[2], &row[3]] {
        assert!(at.as_str().unwrap().starts_with("20"), "{row}");
    }
    assert_ne!(row[2], row[3], "{row}");

    // The cause is fixed; replay PaymentProcessed only.
    sqlx::raw_sql("DROP TRIGGER refuse ON notifications")
        .execute(&notifications)
        .await
        .unwrap();
    let replay = format!("button[data-action='replay'][data-message-id='{processed}']");
    browser.click(&replay).await;
    wait_in_page(
        &browser,
        "the confirmation",
        &format!("const b = document.querySelector(\"{replay}[data-confirm='1']\"); return b ? b.textContent : '';"),
    )
    .await;
    browser
        .eval("document.getElementById('console').scrollIntoView(); return null;")
        .await;
    for path in screenshot_paths(&stack, "dead-letter-console.png") {
        browser.screenshot(&path).await;
    }
    browser.click(&format!("{replay}[data-confirm='1']")).await;
    wait_for_page_depth(&browser, "notification", 1).await;
    eventually(
        "the replayed notification",
        Duration::from_secs(30),
        || async {
            let sent = stack.notifications(&order_id).await;
            if sent == ["PaymentProcessed"] {
                Ok(())
            } else {
                Err(format!("{sent:?}"))
            }
        },
    )
    .await;
    let status = browser
        .eval("return document.getElementById('console-status').textContent")
        .await;
    assert!(
        status.as_str().unwrap().starts_with("Replayed 1 message"),
        "{status}"
    );

    confirm(
        &browser,
        "button[data-action='discard'][data-message-id='poison-console']",
        "Really discard?",
    )
    .await;
    wait_for_page_depth(&browser, "inventory", 0).await;

    confirm(
        &browser,
        "button[data-action='replay-all'][data-service='notification']",
        "Really replay all?",
    )
    .await;
    wait_for_page_depth(&browser, "notification", 0).await;
    eventually("every notification", Duration::from_secs(30), || async {
        let sent = stack.notifications(&order_id).await;
        if sent == ["PaymentProcessed", "OrderConfirmed"] {
            Ok(())
        } else {
            Err(format!("{sent:?}"))
        }
    })
    .await;
    drop(browser);

    stack.assert_invariants().await;
    stack.cleanup().await;
}
