//! Starting, configuring and stopping the binaries.

use reqwest::StatusCode;
use saga_tests::{Service, TestStack};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_bad_variable_stops_the_service_naming_the_variable() {
    saga_tests::stack::ensure_built();
    let cases = [
        ("order-service", "SAGA_TIMEOUT_SECS", "soon"),
        ("inventory-service", "HTTP_ADDR", "not-an-address"),
        ("payment-service", "PAYMENT_SUCCESS_RATE", "2"),
        ("payment-service", "PAYMENT_MAX_ATTEMPTS", "0"),
        ("notification-service", "LOG_FORMAT", "xml"),
        ("order-service", "AMQP_URL", "http://example.com"),
        (
            "order-service",
            "DATABASE_URL",
            "postgres://127.0.0.1:5432/",
        ),
    ];
    for (binary, name, value) in cases {
        let output = Command::new(devstack::binary(binary).unwrap())
            .env(name, value)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{binary} with {name}={value}"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name), "{binary}: {stderr}");
    }
}

#[tokio::test]
async fn every_service_reports_health_readiness_and_metrics() {
    let stack = TestStack::start().await;
    let order = stack.place_order("c", &[("product-A", 1)], 1.0).await;
    stack.final_order(order["id"].as_str().unwrap()).await;
    stack.assert_invariants().await;

    for service in Service::ALL {
        let (status, _) = stack.get_json(service, "/health").await;
        assert_eq!(status, StatusCode::OK);
        let (status, ready) = stack.get_json(service, "/ready").await;
        assert_eq!(status, StatusCode::OK, "{ready}");
        let metrics = stack
            .http
            .get(stack.url(service, "/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("http_requests_total"),
            "{}: {metrics}",
            service.name()
        );
        assert!(stack.metric_sum(service, "messages_consumed_total").await >= 1.0);
    }
    assert!(
        stack
            .metric_sum(Service::Order, "messages_published_total")
            .await
            >= 2.0
    );
    stack.cleanup().await;
}

/// The idle case: SIGTERM reaches each service once its saga has ended, with nothing in
/// flight; each exits 0 within 10 s, logs its stop, and a restart keeps its data. SIGTERM
/// with deliveries in flight is `sigterm_to_*_with_deliveries_in_flight_loses_none` below.
#[tokio::test]
async fn sigterm_stops_every_idle_service_cleanly_and_a_restart_keeps_its_data() {
    let mut stack = TestStack::start().await;
    let order = stack.place_order("c", &[("product-A", 3)], 1.0).await;
    stack.final_order(order["id"].as_str().unwrap()).await;
    stack.assert_invariants().await;

    for service in Service::ALL {
        let statuses = stack.terminate(service, Duration::from_secs(10)).await;
        for status in statuses {
            let status =
                status.unwrap_or_else(|| panic!("{} did not stop within 10 s", service.name()));
            assert!(status.success(), "{} exited with {status}", service.name());
        }
        assert!(
            stack.logs(service).contains("\"stopped\""),
            "{} did not log its stop",
            service.name()
        );
    }
    for service in Service::ALL {
        stack.restart(service, 1).await;
    }

    assert_eq!(stack.stock().await["product-A"], (7, 3));
    assert_eq!(
        stack.order(order["id"].as_str().unwrap()).await["status"],
        "COMPLETED"
    );
    let again = stack.place_order("c", &[("product-A", 1)], 1.0).await;
    assert_eq!(
        stack.final_order(again["id"].as_str().unwrap()).await["status"],
        "COMPLETED"
    );
    stack.assert_invariants().await;
    stack.cleanup().await;
}

/// SIGTERM reaches `victim` while it holds deliveries it has not acked (asserted before the
/// signal): it finishes or returns them and exits 0, and after a restart every saga
/// finishes with the invariants intact. Orders are posted throughout, from just before the
/// signal until after the restart: order-service accepts every one (some while the victim
/// is gone), and they end too. The accounting is of the eight orders placed first.
async fn sigterm_with_deliveries_in_flight(victim: Service) {
    let mut stack = TestStack::start().await;
    stack.set_stock("product-A", 1_000).await;
    stack.pause(victim);
    let mut orders = Vec::new();
    for _ in 0..8 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 2.0).await);
    }
    let tracked: Vec<uuid::Uuid> = orders
        .iter()
        .map(|o| o["id"].as_str().unwrap().parse().expect("a uuid"))
        .collect();
    // Frozen, the victim has been handed deliveries it has not acked: one per order, or
    // for notification-service two (the payment's outcome, then OrderConfirmed).
    let delivered = if victim == Service::Notification {
        16
    } else {
        8
    };
    stack.await_unacked(victim, delivered).await;
    if victim != Service::Notification {
        stack.assert_pending(&orders).await;
    }
    let load = stack.post_orders_throughout(Duration::from_millis(100));
    stack.signal(victim, "TERM");
    stack.resume(victim);
    for status in stack.terminate(victim, Duration::from_secs(20)).await {
        let status = status.unwrap_or_else(|| panic!("{} did not stop", victim.name()));
        assert!(status.success(), "{} exited with {status}", victim.name());
    }
    let gone_at = Instant::now();
    // Each delivery of the eight orders was finished or went back to the queue: none is
    // lost, none is both. Inventory finishes one by publishing its event (sent or still in
    // the outbox); payment by recording the payment its worker then charges (no event
    // yet); notification by storing the notification.
    let db = stack.db(victim).await;
    let count = |table: &'static str| {
        let db = db.clone();
        let tracked = tracked.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {table} WHERE order_id = ANY($1)"
            )))
            .bind(tracked)
            .fetch_one(&db)
            .await
            .expect("rows can be counted")
        }
    };
    let ours = |order_id: String| tracked.iter().any(|t| t.to_string() == order_id);
    let finished = match victim {
        Service::Inventory => {
            // Each reservation once, by event_id: one sent whose row the relay had not yet
            // deleted at the signal is both on the bus and in the outbox.
            let mut reserved: HashSet<String> = stack
                .broker
                .events_of("InventoryReserved")
                .await
                .iter()
                .filter(|event| ours(event.order_id()))
                .map(|event| event.event_id())
                .collect();
            let waiting: Vec<String> = sqlx::query_scalar(
                "SELECT event_id::text FROM outbox
                 WHERE event_type = 'InventoryReserved' AND order_id = ANY($1)",
            )
            .bind(&tracked)
            .fetch_all(&db)
            .await
            .expect("the outbox can be read");
            reserved.extend(waiting);
            reserved.len() as i64
        }
        Service::Payment => count("payments").await,
        _ => count("notifications").await,
    } as u64;
    let queue = saga_tests::contract::queue(&stack.name, victim);
    let returned = stack
        .broker
        .peek(&queue)
        .await
        .unwrap_or_else(|error| panic!("{error}"))
        .iter()
        .filter(|message| ours(message.order_id()))
        .count() as u64;
    assert_eq!(
        finished + returned,
        delivered,
        "{finished} finished, {returned} returned"
    );
    // Orders keep coming while the victim is gone.
    load.await_more_accepted(3).await;
    let back_at = Instant::now();
    stack.restart(victim, 1).await;
    load.await_more_accepted(3).await;
    let posted = load.stop().await;
    let summary = saga_tests::load::summary(&posted);
    assert!(posted.iter().all(|p| p.accepted().is_some()), "{summary}");
    assert!(
        posted.iter().filter(|p| p.within(gone_at, back_at)).count() >= 3,
        "{summary}"
    );
    let loaded: Vec<Value> = saga_tests::load::accepted(&posted)
        .into_iter()
        .map(|id| json!({ "id": id }))
        .collect();
    for order in stack.final_orders(&orders).await {
        assert_eq!(order["status"], "COMPLETED", "{order}");
    }
    for order in stack.final_orders(&loaded).await {
        assert_eq!(order["status"], "COMPLETED", "{order}");
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn sigterm_to_inventory_with_deliveries_in_flight_loses_none() {
    sigterm_with_deliveries_in_flight(Service::Inventory).await;
}

#[tokio::test]
async fn sigterm_to_payment_with_deliveries_in_flight_loses_none() {
    sigterm_with_deliveries_in_flight(Service::Payment).await;
}

#[tokio::test]
async fn sigterm_to_notification_with_deliveries_in_flight_loses_none() {
    sigterm_with_deliveries_in_flight(Service::Notification).await;
}
