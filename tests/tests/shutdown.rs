//! Shutdown is bounded: after SIGTERM a service exits within its budget whatever its links
//! do — even with queries in flight on a PostgreSQL link that went silent, which no
//! timeout of the driver ever ends.

use saga_tests::stack::Dependency;
use saga_tests::{Service, TestStack, eventually};
use std::time::{Duration, Instant};

/// What a service gets between SIGTERM and exit (the host's own budget is 9 s, plus 1 s
/// for the runtime): an orchestrator's grace period is longer, so it never has to SIGKILL.
const EXIT_BUDGET: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_service_whose_database_went_silent_mid_work_exits_within_its_budget_after_sigterm() {
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .through_proxy(Service::Inventory, Dependency::Database)
        .start()
        .await;
    let warmup = stack.place_order("c", &[("product-A", 1)], 3.0).await;
    assert_eq!(
        stack.final_order(warmup["id"].as_str().unwrap()).await["status"],
        "COMPLETED"
    );

    // Orders keep arriving while inventory-service's database link goes silent, so some
    // of its transactions are caught half-way.
    let proxy = stack.proxy(Service::Inventory, Dependency::Database);
    let mut orders = Vec::new();
    for round in 0..6 {
        if round == 3 {
            proxy.blackhole_new_connections();
            proxy.blackhole();
        }
        orders.push(stack.place_order("c", &[("product-A", 1)], 3.0).await);
    }
    eventually(
        "inventory-service to send work into the silent link",
        Duration::from_secs(20),
        || async {
            match proxy.swallowed() {
                // Says how far the struck orders got, so a failure tells a stuck publish
                // (all PENDING) from work done before the strike.
                0 => {
                    let mut statuses = Vec::new();
                    for order in &orders[3..] {
                        let id = order["id"].as_str().unwrap();
                        statuses.push(stack.order(id).await["status"].to_string());
                    }
                    Err(format!("nothing swallowed yet; struck orders {statuses:?}"))
                }
                bytes => Ok(bytes),
            }
        },
    )
    .await;
    let mut pending = 0;
    for order in &orders[3..] {
        if stack.order(order["id"].as_str().unwrap()).await["status"] == "PENDING" {
            pending += 1;
        }
    }
    assert!(pending > 0, "some orders are still in flight at the strike");

    let started = Instant::now();
    let statuses = stack.terminate(Service::Inventory, EXIT_BUDGET).await;
    let took = started.elapsed();
    assert!(
        statuses.iter().all(Option::is_some),
        "inventory-service did not exit within {EXIT_BUDGET:?} of SIGTERM"
    );
    assert!(
        statuses.iter().flatten().all(|status| status.success()),
        "a stop that gave up on stuck work is still a clean stop: {statuses:?}"
    );
    assert!(took < EXIT_BUDGET, "exited after {took:?}");
    assert!(
        stack.logs(Service::Inventory).contains("\"stopped\""),
        "the service says it stopped"
    );

    // The held messages were never acked: a new process finishes every saga.
    stack
        .proxy(Service::Inventory, Dependency::Database)
        .restore();
    stack.restart(Service::Inventory, 1).await;
    for order in &orders {
        assert_eq!(
            stack.final_order(order["id"].as_str().unwrap()).await["status"],
            "COMPLETED"
        );
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}
