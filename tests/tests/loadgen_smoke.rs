//! The smoke benchmark: `loadgen` drives a real stack for a few dozen orders and its report
//! adds up, and `loadgen --calibrate` measures the saga shape on the bare servers. It keeps
//! the load generator working; the figures themselves live in BENCHMARKS.md, not in a
//! timed test.

use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use saga_tests::{Service, TestStack, contract, stack};
use serde_json::Value;
use sqlx::PgPool;

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

/// `loadgen --calibrate` measures the saga's message pattern on the two servers alone (no
/// service runs): it reports sagas per second, latency and CPU per saga, and removes the
/// schemas, exchange and queues it made.
#[tokio::test]
async fn loadgen_calibrate_measures_the_saga_shape_and_leaves_nothing_behind() {
    // No stack here: build loadgen the way a stack would.
    stack::ensure_built();
    let database_url = format!("{}/postgres", stack::postgres_url());
    let output = tokio::process::Command::new(devstack::binary("loadgen").unwrap())
        .args(["--calibrate", "--calibrate-saga-only", "--json"])
        .args(["--calibrate-secs", "1"])
        .args(["--calibrate-database-url", &database_url])
        .args(["--amqp-url", &stack::amqp_url()])
        .output()
        .await
        .expect("loadgen runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "loadgen --calibrate failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON report");
    assert!(
        report.get("postgres_single_row_commits_per_s").is_none(),
        "--calibrate-saga-only skips the raw ceilings: {report}"
    );

    let shape = &report["saga_shape"];
    assert_eq!(shape["publishes_per_saga"], 4, "{shape}");
    assert_eq!(shape["deliveries_per_saga"], 5, "{shape}");
    let closed = &shape["closed_loop"];
    assert!(closed["sagas"].as_u64().unwrap() > 0, "{shape}");
    assert!(closed["sagas_per_s"].as_f64().unwrap() > 0.0, "{shape}");
    assert!(
        closed["cpu_ms_per_saga"]["total"].as_f64().unwrap() > 0.0,
        "{shape}"
    );
    let paced = &shape["paced"];
    // 100 per second for the one-second window, every one of them ended.
    assert_eq!(paced["sagas"], 100, "{shape}");
    let latency = &paced["latency_ms"];
    assert!(latency["p50"].as_f64().unwrap() > 0.0, "{shape}");
    assert!(
        latency["p50"].as_f64() <= latency["p99"].as_f64(),
        "{shape}"
    );
    assert!(
        paced["cpu_ms_per_saga"]["total"].as_f64().unwrap() > 0.0,
        "{shape}"
    );

    let scratch = &shape["scratch"];
    let db = PgPool::connect(&database_url).await.expect("PostgreSQL");
    for schema in scratch["schemas"].as_array().unwrap() {
        let left: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(schema.as_str().unwrap())
                .fetch_one(&db)
                .await
                .unwrap();
        assert!(!left, "schema {schema} was left behind");
    }
    db.close().await;
    let broker = lapin::Connection::connect(&stack::amqp_url(), Default::default())
        .await
        .expect("RabbitMQ");
    // A passive declaration of something missing closes its channel: one channel each.
    let exchange = scratch["exchange"].as_str().unwrap();
    let channel = broker.create_channel().await.unwrap();
    let declared = channel
        .exchange_declare(
            exchange.into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    assert!(declared.is_err(), "exchange {exchange} was left behind");
    let queues = scratch["queues"].as_array().unwrap();
    // Declared by the services' own topology code: each consumer queue with its dead
    // letters, and the audit copy.
    let mut expected: Vec<String> = Service::ALL
        .into_iter()
        .flat_map(|service| {
            [
                contract::queue(exchange, service),
                contract::dead_letter_queue(exchange, service),
            ]
        })
        .collect();
    expected.push(format!("{exchange}.audit"));
    let mut named: Vec<String> = queues
        .iter()
        .map(|q| q.as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    named.sort();
    assert_eq!(named, expected, "{scratch}");
    for queue in queues {
        let channel = broker.create_channel().await.unwrap();
        let declared = channel
            .queue_declare(
                queue.as_str().unwrap().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        assert!(declared.is_err(), "queue {queue} was left behind");
    }
    let _ = broker.close(200, "checked".into()).await;
}
