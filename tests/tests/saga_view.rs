//! `GET /api/orders/{id}/saga` (CONTRACT §10): the saga as every service published it —
//! order-service's timeline, inventory-service's reservation, the audit queue — and the
//! dashboard's flow across four lanes.

use reqwest::StatusCode;
use saga_tests::browser::Browser;
use saga_tests::{Service, TestStack, eventually};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// The saga of `order_id` once it has `steps` events.
async fn saga_with(stack: &TestStack, order_id: &str, steps: usize) -> Vec<Value> {
    eventually(
        &format!("the saga of {order_id} to have {steps} events"),
        Duration::from_secs(20),
        || async {
            let (status, body) = stack
                .get_json(Service::Order, &format!("/api/orders/{order_id}/saga"))
                .await;
            match (status, body.as_array()) {
                (StatusCode::OK, Some(events)) if events.len() >= steps => Ok(events.clone()),
                _ => Err(format!("{status}: {body}")),
            }
        },
    )
    .await
}

fn steps(saga: &[Value]) -> Vec<(String, String)> {
    saga.iter()
        .map(|e| {
            (
                e["publisher"].as_str().unwrap().to_owned(),
                e["event_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Each event was caused by the one before it, and carries the id it was published with.
async fn assert_chain(stack: &TestStack, order_id: &str, saga: &[Value]) {
    assert_eq!(saga[0]["causation_id"], Value::Null, "{saga:?}");
    for pair in saga.windows(2) {
        assert_eq!(pair[1]["causation_id"], pair[0]["event_id"], "{saga:?}");
    }
    let published: Vec<String> = stack
        .broker
        .deliveries()
        .await
        .iter()
        .filter(|e| e.order_id() == order_id)
        .map(|e| e.json()["event_id"].as_str().unwrap().to_owned())
        .collect();
    for event in saga {
        assert!(
            published.contains(&event["event_id"].as_str().unwrap().to_owned()),
            "{event} was not published"
        );
        assert!(
            event["occurred_at"].as_str().is_some_and(|t| t.len() >= 19),
            "{event}"
        );
    }
}

#[tokio::test]
async fn a_completed_saga_shows_every_services_step_in_order_with_its_cause() {
    let stack = TestStack::start().await;
    let order = stack
        .place_order("customer-saga", &[("product-A", 1)], 20.0)
        .await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(stack.final_order(id).await["status"], "COMPLETED");

    let saga = saga_with(&stack, id, 4).await;
    assert_eq!(
        steps(&saga),
        [
            ("order-service".to_owned(), "OrderCreated".to_owned()),
            (
                "inventory-service".to_owned(),
                "InventoryReserved".to_owned()
            ),
            ("payment-service".to_owned(), "PaymentProcessed".to_owned()),
            ("order-service".to_owned(), "OrderConfirmed".to_owned()),
        ]
    );
    assert_chain(&stack, id, &saga).await;

    // A redelivered event is the same step, not a new one.
    let created = stack.broker.events_of("OrderCreated").await;
    stack.broker.republish(&created[0]).await;
    let after = stack
        .place_order("customer-saga", &[("product-B", 1)], 5.0)
        .await;
    let after_id = after["id"].as_str().unwrap();
    stack.final_order(after_id).await;
    saga_with(&stack, after_id, 4).await;
    assert_eq!(saga_with(&stack, id, 4).await.len(), 4);

    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn an_unavailable_order_shows_its_cancellation_and_unknown_orders_are_404() {
    let stack = TestStack::start().await;
    let order = stack
        .place_order("customer-saga", &[("product-C", 1)], 20.0)
        .await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(stack.final_order(id).await["status"], "CANCELLED");
    let saga = saga_with(&stack, id, 3).await;
    assert_eq!(
        steps(&saga),
        [
            ("order-service".to_owned(), "OrderCreated".to_owned()),
            (
                "inventory-service".to_owned(),
                "InventoryUnavailable".to_owned()
            ),
            ("order-service".to_owned(), "OrderCancelled".to_owned()),
        ]
    );
    assert_chain(&stack, id, &saga).await;

    let (status, body) = stack
        .get_json(
            Service::Order,
            "/api/orders/00000000-0000-0000-0000-000000000000/saga",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["detail"].is_string(), "{body}");
    let (status, body) = stack
        .get_json(Service::Order, "/api/orders/not-a-uuid/saga")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["detail"].is_array(), "{body}");
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn the_dashboard_draws_the_saga_across_four_lanes() {
    let stack = TestStack::start().await;
    let order = stack
        .place_order("customer-flow", &[("product-A", 2)], 30.0)
        .await;
    let id = order["id"].as_str().unwrap().to_owned();
    stack.final_order(&id).await;
    saga_with(&stack, &id, 4).await;

    let browser = Browser::start().await;
    browser.open(&stack.url(Service::Order, "/")).await;
    eventually("the order's row", Duration::from_secs(20), || async {
        let rows = browser
            .eval(&format!(
                "return document.querySelectorAll(\"tr[data-order-id='{id}']\").length"
            ))
            .await;
        if rows == 1 {
            Ok(())
        } else {
            Err(rows.to_string())
        }
    })
    .await;
    browser.click(&format!("tr[data-order-id='{id}']")).await;
    let drawn = eventually("the flow to be drawn", Duration::from_secs(20), || async {
        let steps = browser
            .eval("return document.getElementById('saga-flow').dataset.steps || ''")
            .await;
        let steps = steps.as_str().unwrap_or_default().to_owned();
        if steps.split(',').count() == 4 {
            Ok(steps)
        } else {
            Err(steps)
        }
    })
    .await;
    assert_eq!(
        drawn,
        "order-service:OrderCreated,inventory-service:InventoryReserved,\
         payment-service:PaymentProcessed,order-service:OrderConfirmed"
    );
    let lanes = browser
        .eval("return [...document.querySelectorAll('#saga-flow .lane')].map(l => l.textContent)")
        .await;
    assert_eq!(
        lanes,
        serde_json::json!(["after", "order", "inventory", "payment", "notification"])
    );
    // Each step sits in its publisher's lane: column 2 is order, 3 inventory, 4 payment.
    let columns = browser
        .eval(
            "const cells = [...document.querySelectorAll('#saga-flow > div')].slice(5);\
             return cells.map((c, i) => c.querySelector('.step') ? i % 5 : null).filter(i => i !== null)",
        )
        .await;
    assert_eq!(columns, serde_json::json!([1, 2, 3, 1]));
    let mut paths = vec![stack.log_dir().join("saga-flow.png")];
    if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        paths.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/saga-flow.png"));
    }
    browser
        .eval("document.getElementById('saga-order').closest('section').scrollIntoView(); return null")
        .await;
    for path in paths {
        browser.screenshot(&path).await;
    }
    drop(browser);
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn audit_rows_past_the_retention_are_pruned_and_recent_ones_kept() {
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .service_env(Service::Order, "SAGA_AUDIT_RETENTION_HOURS", "24")
        .start()
        .await;
    let order = stack
        .place_order("customer-retention", &[("product-A", 1)], 20.0)
        .await;
    let id = order["id"].as_str().unwrap().to_owned();
    stack.final_order(&id).await;
    saga_with(&stack, &id, 4).await;

    // An event recorded two days ago, beside today's four.
    let db = stack.db(Service::Order).await;
    sqlx::query(
        "INSERT INTO saga_events (event_id, order_id, event_type, publisher, occurred_at, recorded_at) \
         VALUES (gen_random_uuid(), $1::uuid, 'OrderCreated', 'order-service', \
                 now() - interval '2 days', now() - interval '2 days')",
    )
    .bind(&id)
    .execute(&db)
    .await
    .expect("an old audit row");
    assert_eq!(saga_with(&stack, &id, 5).await.len(), 5);

    // order-service prunes at start (and every ten minutes after).
    stack.kill(Service::Order).await;
    stack.restart(Service::Order, 1).await;
    let kept = eventually(
        "the old row to be pruned",
        Duration::from_secs(20),
        || async {
            let saga = saga_with(&stack, &id, 4).await;
            if saga.len() == 4 {
                Ok(saga)
            } else {
                Err(format!("{saga:?}"))
            }
        },
    )
    .await;
    assert!(kept.iter().all(|e| e["occurred_at"].as_str().is_some()));
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_stuck_saga_shows_the_reservation_read_from_inventory_which_no_copy_duplicates() {
    // No payment-service yet: the saga stops after the reservation.
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .only(&[Service::Inventory, Service::Order])
        .start()
        .await;
    let order = stack
        .place_order("customer-stuck", &[("product-A", 1)], 20.0)
        .await;
    let id = order["id"].as_str().unwrap().to_owned();
    let saga = saga_with(&stack, &id, 2).await;
    assert_eq!(
        steps(&saga),
        [
            ("order-service".to_owned(), "OrderCreated".to_owned()),
            (
                "inventory-service".to_owned(),
                "InventoryReserved".to_owned()
            ),
        ]
    );
    assert_chain(&stack, &id, &saga).await;

    // inventory-service answers with the event as it published it …
    let (status, reservation) = stack
        .get_json(
            Service::Inventory,
            &format!("/api/inventory/reservations/{id}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reservation}");
    assert_eq!(reservation["order_id"], id.as_str());
    assert_eq!(reservation["status"], "RESERVED");
    assert_eq!(reservation["reserved"]["event_id"], saga[1]["event_id"]);
    assert_eq!(reservation["reserved"]["causation_id"], saga[0]["event_id"]);
    assert_eq!(
        reservation["reserved"]["occurred_at"],
        saga[1]["occurred_at"]
    );
    let published = stack.broker.events_of("InventoryReserved").await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].json()["event_id"], saga[1]["event_id"]);
    let (status, _) = stack
        .get_json(
            Service::Inventory,
            "/api/inventory/reservations/00000000-0000-0000-0000-000000000000",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = stack
        .get_json(Service::Inventory, "/api/inventory/reservations/not-a-uuid")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // … and order-service keeps no copy of it.
    let copies: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM saga_events WHERE order_id = $1::uuid AND event_type = 'InventoryReserved'",
    )
    .bind(&id)
    .fetch_one(&stack.db(Service::Order).await)
    .await
    .unwrap();
    assert_eq!(
        copies, 0,
        "order-service recorded a copy of InventoryReserved"
    );

    // Without inventory-service the view shows what order-service has, at once.
    stack.kill(Service::Inventory).await;
    let started = std::time::Instant::now();
    let (status, partial) = stack
        .get_json(Service::Order, &format!("/api/orders/{id}/saga"))
        .await;
    assert_eq!(status, StatusCode::OK, "{partial}");
    assert_eq!(
        steps(partial.as_array().unwrap()),
        [("order-service".to_owned(), "OrderCreated".to_owned())]
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Orders keep coming while inventory-service is away: accepted, waiting for it.
    let during = stack
        .place_order("customer-stuck", &[("product-B", 1)], 5.0)
        .await;
    let during = during["id"].as_str().unwrap().to_owned();
    let (status, partial) = stack
        .get_json(Service::Order, &format!("/api/orders/{during}/saga"))
        .await;
    assert_eq!(status, StatusCode::OK, "{partial}");
    assert_eq!(partial.as_array().unwrap().len(), 1, "{partial}");

    // Everything back (order-service told inventory-service's new address): the saga ends
    // and the view shows all of it.
    stack.restart(Service::Inventory, 1).await;
    stack.restart(Service::Payment, 1).await;
    stack.restart(Service::Notification, 1).await;
    stack.kill(Service::Order).await;
    let inventory_url = stack.url(Service::Inventory, "");
    stack
        .add_replica_with_env(Service::Order, &[("INVENTORY_URL", &inventory_url)])
        .await;
    assert_eq!(stack.final_order(&id).await["status"], "COMPLETED");
    let saga = saga_with(&stack, &id, 4).await;
    assert_eq!(
        steps(&saga)[1],
        (
            "inventory-service".to_owned(),
            "InventoryReserved".to_owned()
        )
    );
    assert_chain(&stack, &id, &saga).await;
    assert_eq!(stack.final_order(&during).await["status"], "COMPLETED");
    let saga = saga_with(&stack, &during, 4).await;
    assert_chain(&stack, &during, &saga).await;
    stack.assert_invariants().await;
    stack.cleanup().await;
}

/// A broker that ran the older layout has the audit queue bound to `inventory.reserved`:
/// a binding outlives its declarer, so the service that declares the layout removes it.
#[tokio::test]
async fn an_audit_binding_of_the_older_layout_goes_when_the_layout_is_declared() {
    let mut stack = TestStack::start().await;
    let connection = lapin::Connection::connect(
        &saga_tests::stack::amqp_url(),
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("RabbitMQ is reachable");
    let channel = connection.create_channel().await.expect("a channel");
    let audit = ::contract::queues::audit_queue(&stack.name);
    channel
        .queue_bind(
            audit.as_str().into(),
            stack.name.as_str().into(),
            "inventory.reserved".into(),
            Default::default(),
            Default::default(),
        )
        .await
        .expect("the older binding");
    let db = stack.db(Service::Order).await;
    let copies = |id: String| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM saga_events \
                 WHERE order_id = $1::uuid AND event_type = 'InventoryReserved'",
            )
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };

    // While the binding stands, the copy is recorded: what the test would see if it stayed.
    let before = stack
        .place_order("customer-layout", &[("product-A", 1)], 20.0)
        .await;
    let before = before["id"].as_str().unwrap().to_owned();
    stack.final_order(&before).await;
    eventually(
        "the older layout's copy",
        Duration::from_secs(20),
        || async {
            match copies(before.clone()).await {
                1 => Ok(()),
                n => Err(format!("{n} copies")),
            }
        },
    )
    .await;

    // order-service declares the layout again as it starts.
    stack.kill(Service::Order).await;
    stack.restart(Service::Order, 1).await;
    let after = stack
        .place_order("customer-layout", &[("product-A", 1)], 20.0)
        .await;
    let after = after["id"].as_str().unwrap().to_owned();
    stack.final_order(&after).await;
    // A copy would be recorded well before a saga placed after it ends.
    let last = stack
        .place_order("customer-layout", &[("product-B", 1)], 20.0)
        .await;
    stack.final_order(last["id"].as_str().unwrap()).await;
    assert_eq!(
        copies(after.clone()).await,
        0,
        "the older binding still copies"
    );
    assert_eq!(saga_with(&stack, &after, 4).await.len(), 4);
    stack.assert_invariants().await;
    stack.cleanup().await;
}
