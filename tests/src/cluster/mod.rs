//! A three-node RabbitMQ cluster on this machine (`tests/rabbit-cluster.sh`: nodes
//! `saga-1..3@localhost`, AMQP on 5681-5683; the system node on 5672 is not touched) and a
//! stack whose services list all three nodes with quorum queues, for `tests/cluster.rs`.
//!
//! Every test starts the cluster afresh and stops it (deleting its data) when it ends, even
//! when it fails, so each starts from a healthy cluster whatever the one before did to it.
//! The tests of one process take turns ([`Cluster::start`] waits for the one before);
//! `.config/nextest.toml` runs the `cluster` binary alone, one test at a time.
//!
//! - [`queues`]: the queues as the cluster sees them — depths, leaders, moving a leader.
//! - [`partition`]: cutting a node off the other two with `iptables`, and healing it.

pub mod partition;
pub mod queues;

use crate::{Service, TestStack, eventually};
use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rabbit-cluster.sh");

/// Runs `tests/rabbit-cluster.sh` with `args` and returns what it printed.
pub async fn script(args: &[&str]) -> String {
    let child = tokio::process::Command::new(SCRIPT)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the cluster script runs");
    finished(child, args).await
}

async fn finished(child: tokio::process::Child, args: &[&str]) -> String {
    let output = child
        .wait_with_output()
        .await
        .expect("the cluster script runs");
    assert!(
        output.status.success(),
        "rabbit-cluster.sh {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // What it had to do beyond the usual (`rejoin` re-syncing `global`), in the test's output.
    let said = String::from_utf8_lossy(&output.stderr);
    if !said.trim().is_empty() {
        eprintln!("rabbit-cluster.sh {args:?}: {}", said.trim());
    }
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `rabbitmqctl` on node `n`.
pub async fn rabbitmqctl(n: usize, args: &[&str]) -> String {
    let node = format!("saga-{n}@localhost");
    let output = tokio::process::Command::new("rabbitmqctl")
        .args(["-q", "-n", &node])
        .args(args)
        .output()
        .await
        .expect("rabbitmqctl runs");
    assert!(
        output.status.success(),
        "rabbitmqctl -n {node} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One cluster at a time in this process: `cargo test` runs a binary's tests in parallel.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cluster runs for the test and is stopped after it, even when it fails.
pub struct Cluster {
    pub urls: String,
    /// When the test began, for the phase times it prints.
    pub started: Instant,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    /// Starts the nodes and, while they boot, builds the service binaries.
    pub async fn start() -> Self {
        let turn = ONE_AT_A_TIME.lock().await;
        let started = Instant::now();
        let urls = script(&["urls"]).await;
        let starting = tokio::process::Command::new(SCRIPT)
            .arg("start")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the cluster script runs");
        crate::stack::ensure_built();
        finished(starting, &["start"]).await;
        Self {
            urls,
            started,
            _turn: turn,
        }
    }

    /// Prints how long the test has run, after `what`.
    pub fn lap(&self, what: &str) {
        eprintln!("{what} after {:?}", self.started.elapsed());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(SCRIPT).arg("stop").status();
    }
}

/// A fresh cluster and a stack on it: the services get all three nodes in `AMQP_URL` and
/// `AMQP_QUEUE_TYPE=quorum`, two replicas of inventory-service, every payment succeeding
/// and the saga timeout an hour away (so a lost message leaves its order `PENDING`).
/// Asserts that every service is on node 1 (the first listed answers) and that all the
/// stack's queues are quorum queues.
pub async fn start() -> (Cluster, TestStack) {
    let cluster = Cluster::start().await;
    let mut stack = TestStack::builder()
        .amqp_url(&cluster.urls)
        .env("AMQP_QUEUE_TYPE", "quorum")
        .env("PAYMENT_SUCCESS_RATE", "1")
        .env("SAGA_TIMEOUT_SECS", "3600")
        // As a user would run it: the consumers of a queue on more than one connection.
        .replicas(Service::Inventory, 2)
        .start()
        .await;
    // The invariant checker reads queue depths from the cluster, not the system node.
    stack.rabbitmq_node = Some("saga-1@localhost,saga-2@localhost,saga-3@localhost".into());
    stack.set_stock("product-A", 100_000).await;
    for service in Service::ALL {
        assert_eq!(
            node_of(&stack, service).await,
            1,
            "the first node listed answers"
        );
    }
    let types = rabbitmqctl(1, &["list_queues", "name", "type", "--no-table-headers"]).await;
    let ours: Vec<&str> = types
        .lines()
        .filter(|line| line.starts_with(&format!("{}.", stack.name)) && !line.contains(".tap"))
        .collect();
    // Per service its queue, its DLQ and three delay queues; and the saga audit's queue.
    assert_eq!(ours.len(), 4 * (2 + 3) + 1, "{types}");
    assert!(ours.iter().all(|line| line.ends_with("quorum")), "{ours:?}");
    cluster.lap("cluster and stack up");
    (cluster, stack)
}

/// The node (1-3) a `host:port` is on.
fn node_number(address: &str) -> usize {
    match address.rsplit(':').next() {
        Some("5681") => 1,
        Some("5682") => 2,
        Some("5683") => 3,
        _ => panic!("{address} is not a node of the test cluster"),
    }
}

/// The node `service` says it is connected to on `/ready`, once it is ready.
pub async fn node_of(stack: &TestStack, service: Service) -> usize {
    let node = eventually(
        &format!("{} to be ready", service.name()),
        Duration::from_secs(60),
        || async {
            match stack.get_json(service, "/ready").await {
                (StatusCode::OK, body) => body["rabbitmq_node"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("no node in {body}")),
                (status, body) => Err(format!("{status} {body}")),
            }
        },
    )
    .await;
    node_number(&node)
}

/// Waits until every service is ready on a node other than `gone`.
pub async fn all_moved_off(stack: &TestStack, gone: usize) {
    for service in Service::ALL {
        eventually(
            &format!("{} to move off node {gone}", service.name()),
            Duration::from_secs(60),
            || async {
                match node_of(stack, service).await {
                    n if n == gone => Err(format!("still on node {n}")),
                    _ => Ok(()),
                }
            },
        )
        .await;
    }
}

/// Places orders every 100 ms until `stop`, and collects them.
pub async fn load(stack: &TestStack, stop: &AtomicBool, placed: &Mutex<Vec<Value>>) {
    while !stop.load(Ordering::SeqCst) {
        let order = stack.place_order("c", &[("product-A", 1)], 2.5).await;
        placed.lock().expect("not poisoned").push(order);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until at least `more` orders were placed after the `during`-th.
pub async fn placed_beyond(placed: &Mutex<Vec<Value>>, during: usize, more: usize, what: &str) {
    eventually(what, Duration::from_secs(30), || async {
        match placed.lock().expect("not poisoned").len() {
            now if now >= during + more => Ok(()),
            now => Err(format!("{} orders", now - during)),
        }
    })
    .await;
}

/// Every order ends `COMPLETED`, then the §6 invariants hold with empty dead-letter queues.
pub async fn all_complete(stack: &TestStack, orders: &[Value]) {
    for order in orders {
        let done = stack.final_order(order["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "COMPLETED", "{done}");
    }
    stack.assert_invariants().await;
}

/// A time in an order's JSON (`created_at`, `updated_at`: UTC, no offset).
pub fn order_time(order: &Value, field: &str) -> DateTime<Utc> {
    let text = order[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {order}"));
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .unwrap_or_else(|error| panic!("{field} {text:?}: {error}"))
        .and_utc()
}
