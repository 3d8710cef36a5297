//! CONTRACT §11: on a three-node RabbitMQ cluster with quorum queues, losing any one node at
//! any moment loses no order and every saga finishes. The services get all three nodes in
//! `AMQP_URL` and `AMQP_QUEUE_TYPE=quorum`; the test SIGKILLs the node they are connected
//! to mid-flow, restarts each node in turn under load, and cuts one node off the cluster
//! (`rabbitmqctl stop_app`). After each, every order is `COMPLETED` (the saga timeout is far
//! away, so a lost message would leave its order `PENDING`), the §6 invariants hold, and
//! the dead-letter queues are empty.
//!
//! It starts three extra RabbitMQ nodes (`tests/rabbit-cluster.sh`, ports 5681-5683; the
//! system node on 5672 is not touched) and is heavy, so `.config/nextest.toml` runs it alone.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use futures_util::future::join_all;
use reqwest::StatusCode;
use saga_tests::{Service, TestStack, contract, eventually};
use serde_json::Value;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rabbit-cluster.sh");

/// Runs `tests/rabbit-cluster.sh` with `args` and returns what it printed.
async fn script(args: &[&str]) -> String {
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
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `rabbitmqctl` on node `n`.
async fn rabbitmqctl(n: usize, args: &[&str]) -> String {
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

/// The cluster runs for the test and is stopped after it, even when it fails.
struct Cluster {
    urls: String,
}

impl Cluster {
    /// Starts the nodes and, while they boot, builds the service binaries.
    async fn start() -> Self {
        let cluster = Self {
            urls: script(&["urls"]).await,
        };
        let starting = tokio::process::Command::new(SCRIPT)
            .arg("start")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the cluster script runs");
        saga_tests::stack::ensure_built();
        finished(starting, &["start"]).await;
        cluster
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(SCRIPT).arg("stop").status();
    }
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
async fn node_of(stack: &TestStack, service: Service) -> usize {
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
async fn all_moved_off(stack: &TestStack, gone: usize) {
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

/// Messages (ready and unacknowledged) in `queue`, asked of node `via`.
async fn queue_messages(via: usize, queue: &str) -> u64 {
    let listing = rabbitmqctl(
        via,
        &["list_queues", "name", "messages", "--no-table-headers"],
    )
    .await;
    listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .find(|(name, _)| *name == queue)
        .and_then(|(_, count)| count.trim().parse().ok())
        .unwrap_or(0)
}

/// The node leading `queue` (a quorum queue), asked of node `via`; `None` while it has none.
async fn leader_of(via: usize, queue: &str) -> Option<usize> {
    let listing = rabbitmqctl(
        via,
        &["list_queues", "name", "leader", "--no-table-headers"],
    )
    .await;
    let leader = listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .find(|(name, _)| *name == queue)
        .map(|(_, leader)| leader.trim().to_owned())
        .unwrap_or_else(|| panic!("{queue} is not listed:\n{listing}"));
    match leader.as_str() {
        "saga-1@localhost" => Some(1),
        "saga-2@localhost" => Some(2),
        "saga-3@localhost" => Some(3),
        _ => None,
    }
}

/// Places orders every 100 ms until `stop`, and collects them.
async fn load(stack: &TestStack, stop: &AtomicBool, placed: &Mutex<Vec<Value>>) {
    while !stop.load(Ordering::SeqCst) {
        let order = stack.place_order("c", &[("product-A", 1)], 2.5).await;
        placed.lock().expect("not poisoned").push(order);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Makes node `n` lead the quorum queue `queue` (`rabbit_quorum_queue:transfer_leadership`,
/// what `rabbitmq-queues rebalance` uses), asked of node `n`.
async fn make_leader(n: usize, queue: &str) {
    let transfer = format!(
        "{{ok, Q}} = rabbit_amqqueue:lookup(rabbit_misc:r(<<\"/\">>, queue, <<\"{queue}\">>)), \
         rabbit_quorum_queue:transfer_leadership(Q, 'saga-{n}@localhost')."
    );
    eventually(
        &format!("node {n} to lead {queue}"),
        Duration::from_secs(30),
        || async {
            match leader_of(n, queue).await {
                Some(leader) if leader == n => Ok(()),
                leader => {
                    rabbitmqctl(n, &["eval", &transfer]).await;
                    Err(format!("led by {leader:?}"))
                }
            }
        },
    )
    .await;
}

/// Freezes payment-service until reservations of in-flight sagas wait in its queue, and
/// asserts that node `n` leads that queue: a strike on `n` then hits work in flight, not a
/// node the stack's messages do not pass through. Resume payment-service after the strike.
async fn work_held_by(stack: &TestStack, n: usize) {
    let queue = contract::queue(&stack.name, Service::Payment);
    stack.pause(Service::Payment);
    eventually(
        "reservations waiting in the payment queue",
        Duration::from_secs(30),
        || async {
            match queue_messages(n, &queue).await {
                3.. => Ok(()),
                found => Err(format!("{found} messages")),
            }
        },
    )
    .await;
    assert_eq!(
        leader_of(n, &queue).await,
        Some(n),
        "node {n} does not lead {queue}, which holds the work"
    );
}

/// Every order ends `COMPLETED`, then the §6 invariants hold with empty dead-letter queues.
async fn all_complete(stack: &TestStack, orders: &[Value]) {
    for order in orders {
        let done = stack.final_order(order["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "COMPLETED", "{done}");
    }
    stack.assert_invariants().await;
}

/// SIGKILL the node the services are on, with payments frozen so that every order is
/// provably `PENDING` and its `InventoryReserved` waits in the payment queue at the strike.
async fn kill_the_connected_node(stack: &TestStack) {
    let victim = node_of(stack, Service::Order).await;
    let witness = victim % 3 + 1;
    stack.pause(Service::Payment);
    let mut orders =
        join_all((0..20).map(|_| stack.place_order("c", &[("product-A", 2)], 9.0))).await;
    let payment_queue = contract::queue(&stack.name, Service::Payment);
    eventually(
        "20 payments waiting in the payment queue",
        Duration::from_secs(30),
        || async {
            match queue_messages(witness, &payment_queue).await {
                20.. => Ok(()),
                n => Err(format!("{n} messages")),
            }
        },
    )
    .await;
    for order in &orders {
        assert_eq!(
            stack.order(order["id"].as_str().unwrap()).await["status"],
            "PENDING"
        );
    }

    script(&["kill-node", &victim.to_string()]).await;
    // Orders keep coming while the services fail over.
    for _ in 0..5 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 3.0).await);
    }
    stack.resume(Service::Payment);
    // Each service goes round the list to a node that answers: usually the next one, but
    // under load that node may be slow to answer and the one after it wins, so the test
    // asks only that none stays on the lost node. (The order of the round is a unit test
    // in common: `amqp::nodes::tests::a_list_keeps_its_order_and_goes_round`.)
    all_moved_off(stack, victim).await;
    all_complete(stack, &orders).await;
    script(&["start-node", &victim.to_string()]).await;
}

/// A time in an order's JSON (`created_at`, `updated_at`: UTC, no offset).
fn order_time(order: &Value, field: &str) -> DateTime<Utc> {
    let text = order[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {order}"));
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .unwrap_or_else(|error| panic!("{field} {text:?}: {error}"))
        .and_utc()
}

/// The node leading most of the services' queues, asked of node `via`.
async fn leading_node(stack: &TestStack, via: usize) -> usize {
    let mut led = [0usize; 4];
    for service in Service::ALL {
        if let Some(n) = leader_of(via, &contract::queue(&stack.name, service)).await {
            led[n] += 1;
        }
    }
    (1..=3).max_by_key(|n| led[*n]).expect("three nodes")
}

/// Posts an order every 50 ms and SIGKILLs node `victim` after the 40th, as a user loses
/// a node mid-traffic: the orders of the seconds right after the kill are
/// published while the queues elect new leaders (issue 21: that left order-service's
/// publishing channel refusing every publish for the rest of the run, so those sagas
/// never finished). Payments are held from the 40th order until the kill, so it strikes
/// sagas waiting in the payment queue (asserted before it); posting goes on until 80
/// orders were placed after it. Every order completes — each placed after the kill within 15 s of being placed —
/// and the §6 invariants hold. Prints the time from the kill to the first completion of an
/// order placed after it.
async fn post_through_a_kill(stack: &TestStack, victim: usize, which: &str) {
    // As an operator would check: every quorum queue keeps a majority without the victim.
    rabbitmqctl_upgrade(victim).await;
    let placed = Mutex::new(Vec::new());
    let killed = Mutex::new(None::<(DateTime<Utc>, usize)>);
    let posting = async {
        let mut pace = tokio::time::interval(Duration::from_millis(50));
        // Until 80 orders were placed after the kill (at most 600 in all).
        for _ in 0..600 {
            pace.tick().await;
            let order = stack.place_order("c", &[("product-A", 1)], 4.0).await;
            let mut placed = placed.lock().expect("not poisoned");
            placed.push(order);
            if let Some((_, at)) = *killed.lock().expect("not poisoned")
                && placed.len() >= at + 80
            {
                break;
            }
        }
    };
    let strike = async {
        eventually("40 orders placed", Duration::from_secs(30), || async {
            match placed.lock().expect("not poisoned").len() {
                40.. => Ok(()),
                n => Err(format!("{n} placed")),
            }
        })
        .await;
        // Payments held until after the kill: the sagas placed before it are provably in
        // flight, waiting in the payment queue, when it strikes.
        stack.pause(Service::Payment);
        let witness = victim % 3 + 1;
        let queue = contract::queue(&stack.name, Service::Payment);
        let held = eventually(
            "payments waiting in the payment queue",
            Duration::from_secs(30),
            || async {
                match queue_messages(witness, &queue).await {
                    0 => Err(format!("none in {queue}")),
                    n => Ok(n),
                }
            },
        )
        .await;
        let killed_at = Utc::now();
        *killed.lock().expect("not poisoned") =
            Some((killed_at, placed.lock().expect("not poisoned").len()));
        script(&["kill-node", &victim.to_string()]).await;
        stack.resume(Service::Payment);
        (killed_at, held)
    };
    let ((), (killed_at, held)) = tokio::join!(posting, strike);
    let placed = placed.into_inner().expect("not poisoned");

    let after: Vec<&Value> = placed
        .iter()
        .filter(|order| order_time(order, "created_at") >= killed_at)
        .collect();
    let right_after = after
        .iter()
        .filter(|order| order_time(order, "created_at") < killed_at + TimeDelta::seconds(3))
        .count();
    assert!(
        right_after >= 30,
        "only {right_after} orders were placed in the 3 s after the kill: the load must go on through it"
    );

    let ended = stack.final_orders(&placed).await;
    for order in &ended {
        assert_eq!(order["status"], "COMPLETED", "{which}: {order}");
    }
    let mut first_after = None::<TimeDelta>;
    for order in ended
        .iter()
        .filter(|o| order_time(o, "created_at") >= killed_at)
    {
        let took = order_time(order, "updated_at") - order_time(order, "created_at");
        assert!(
            took <= TimeDelta::seconds(15),
            "{which}: an order placed after the kill took {took} to complete: {order}"
        );
        let since_kill = order_time(order, "updated_at") - killed_at;
        first_after = Some(first_after.map_or(since_kill, |t| t.min(since_kill)));
    }
    let first_after = first_after.expect("orders were placed after the kill");
    eprintln!(
        "{which} (node {victim}) killed: {held} payments held in flight, {} orders placed after; \
         the first of those completed {} ms after the kill",
        after.len(),
        first_after.num_milliseconds()
    );
    stack.assert_invariants().await;
    script(&["start-node", &victim.to_string()]).await;
}

/// Stops and starts each node in turn while orders keep coming.
async fn rolling_restart(stack: &TestStack) {
    let stop = AtomicBool::new(false);
    let placed = Mutex::new(Vec::new());
    let restarts = async {
        for n in 1..=3 {
            // As an operator would: only take a node down when every quorum queue keeps a
            // majority without it.
            rabbitmqctl_upgrade(n).await;
            // The worst moment for the node to go: it leads the payment queue while
            // reservations wait there.
            make_leader(n, &contract::queue(&stack.name, Service::Payment)).await;
            work_held_by(stack, n).await;
            script(&["stop-node", &n.to_string()]).await;
            stack.resume(Service::Payment);
            let during = placed.lock().expect("not poisoned").len();
            eventually(
                "orders placed while the node is down",
                Duration::from_secs(30),
                || async {
                    match placed.lock().expect("not poisoned").len() {
                        now if now >= during + 5 => Ok(()),
                        now => Err(format!("{} orders", now - during)),
                    }
                },
            )
            .await;
            script(&["start-node", &n.to_string()]).await;
        }
        stop.store(true, Ordering::SeqCst);
    };
    tokio::join!(load(stack, &stop, &placed), restarts);
    let orders = placed.into_inner().expect("not poisoned");
    all_complete(stack, &orders).await;
}

/// `rabbitmq-upgrade await_online_quorum_plus_one` on node `n`.
async fn rabbitmqctl_upgrade(n: usize) {
    let node = format!("saga-{n}@localhost");
    let status = tokio::process::Command::new("rabbitmq-upgrade")
        .args([
            "-q",
            "-n",
            &node,
            "await_online_quorum_plus_one",
            "-t",
            "120",
        ])
        .status()
        .await
        .expect("rabbitmq-upgrade runs");
    assert!(
        status.success(),
        "quorum queues lack a replica beyond quorum"
    );
}

/// Cuts the node leading the payment queue off the cluster (`stop_app`: its VM lives, its
/// RabbitMQ does not) under load, then brings it back.
async fn partition_a_node(stack: &TestStack) {
    let queue = contract::queue(&stack.name, Service::Payment);
    let services_on = node_of(stack, Service::Payment).await;
    let victim = leader_of(services_on, &queue)
        .await
        .expect("the payment queue has a leader");
    let stop = AtomicBool::new(false);
    let placed = Mutex::new(Vec::new());
    let partition = async {
        work_held_by(stack, victim).await;
        rabbitmqctl(victim, &["stop_app"]).await;
        stack.resume(Service::Payment);
        let during = placed.lock().expect("not poisoned").len();
        eventually(
            "orders placed while the node is cut off",
            Duration::from_secs(30),
            || async {
                match placed.lock().expect("not poisoned").len() {
                    now if now >= during + 10 => Ok(()),
                    now => Err(format!("{} orders", now - during)),
                }
            },
        )
        .await;
        let survivor = victim % 3 + 1;
        eventually(
            "the payment queue to elect a leader on another node",
            Duration::from_secs(30),
            || async {
                match leader_of(survivor, &queue).await {
                    Some(n) if n != victim => Ok(()),
                    leader => Err(format!("led by {leader:?}")),
                }
            },
        )
        .await;
        script(&["start-node", &victim.to_string()]).await;
        stop.store(true, Ordering::SeqCst);
    };
    tokio::join!(load(stack, &stop, &placed), partition);
    let orders = placed.into_inner().expect("not poisoned");
    all_complete(stack, &orders).await;
}

#[tokio::test]
async fn with_quorum_queues_on_three_nodes_losing_any_node_loses_no_order() {
    let started = Instant::now();
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
    eprintln!("cluster and stack up after {:?}", started.elapsed());

    kill_the_connected_node(&stack).await;
    eprintln!("node killed and back after {:?}", started.elapsed());
    let connected = node_of(&stack, Service::Order).await;
    post_through_a_kill(&stack, connected, "the node the services are on").await;
    let via = node_of(&stack, Service::Order).await;
    let leading = leading_node(&stack, via).await;
    post_through_a_kill(&stack, leading, "the node leading most queues").await;
    eprintln!("two kills under load done after {:?}", started.elapsed());
    rolling_restart(&stack).await;
    eprintln!("rolling restart done after {:?}", started.elapsed());
    partition_a_node(&stack).await;
    eprintln!("partition healed after {:?}", started.elapsed());
    stack.cleanup().await;
}
