//! The smoke benchmark: `loadgen` drives a real stack for a few dozen orders and its report
//! adds up. It keeps the load generator working; the figures themselves live in
//! BENCHMARKS.md, not in a timed test.

use saga_tests::{Service, TestStack, stack};
use serde_json::Value;

const ORDERS: usize = 60;
const PRODUCTS: [&str; 2] = ["load-1", "load-2"];

#[tokio::test]
async fn loadgen_drives_a_stack_and_reports_every_saga() {
    let mut stack = TestStack::start().await;
    // Enough stock that loadgen's own top-up has nothing to do and the test's invariant
    // check knows every unit.
    for product in PRODUCTS {
        stack.set_stock(product, ORDERS as i64 * 2).await;
    }
    // The stack built loadgen with the services.
    let output = tokio::process::Command::new(devstack::binary("loadgen").unwrap())
        .args([
            "--orders",
            &ORDERS.to_string(),
            "--concurrency",
            "8",
            "--json",
        ])
        .args(["--products", &PRODUCTS.join(",")])
        .args(["--settle-secs", "60"])
        .args(["--order-url", &stack.url(Service::Order, "")])
        .args(["--inventory-url", &stack.url(Service::Inventory, "")])
        .args(["--payment-url", &stack.url(Service::Payment, "")])
        .args(["--notification-url", &stack.url(Service::Notification, "")])
        .args(["--amqp-url", &stack::amqp_url()])
        .args(["--exchange", &stack.name])
        .env("ADMIN_TOKEN", stack::TEST_ADMIN_TOKEN)
        .output()
        .await
        .expect("loadgen runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "loadgen failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON report");
    assert_eq!(report["orders"], ORDERS);
    assert_eq!(report["statuses"]["201"], ORDERS);
    assert_eq!(report["completed"], ORDERS, "{report}");
    assert_eq!(report["unfinished"], 0);
    assert_eq!(report["invariants_checked"], true);
    assert_eq!(report["invariant_violations"], Value::Array(vec![]));
    assert!(report["throughput"].as_f64().unwrap() > 0.0, "{report}");
    let saga = &report["saga_latency_ms"];
    assert!(saga["p50"].as_f64().unwrap() > 0.0, "{report}");
    assert!(saga["p50"].as_f64() <= saga["p99"].as_f64(), "{report}");

    stack.assert_invariants().await;
    stack.cleanup().await;
}
