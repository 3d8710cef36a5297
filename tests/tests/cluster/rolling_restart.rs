//! A rolling restart under load, as an operator upgrades the cluster node by node.

use saga_tests::cluster::queues::{await_quorum_plus_one, make_leader, work_held_by};
use saga_tests::cluster::{all_complete, load, placed_beyond, script};
use saga_tests::{Service, contract};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Stops and starts each node in turn while an order is posted every 100 ms; each node goes
/// down while it leads the payment queue with reservations waiting there.
#[tokio::test]
async fn a_rolling_restart_under_load_loses_no_order() {
    let (cluster, stack) = saga_tests::cluster::start().await;
    let stop = AtomicBool::new(false);
    let placed = Mutex::new(Vec::new());
    let restarts = async {
        for n in 1..=3 {
            // As an operator would: only take a node down when every quorum queue keeps a
            // majority without it.
            await_quorum_plus_one(n).await;
            // The worst moment for the node to go: it leads the payment queue while
            // reservations wait there.
            make_leader(n, &contract::queue(&stack.name, Service::Payment)).await;
            work_held_by(&stack, n).await;
            script(&["stop-node", &n.to_string()]).await;
            stack.resume(Service::Payment);
            let during = placed.lock().expect("not poisoned").len();
            placed_beyond(&placed, during, 5, "orders placed while the node is down").await;
            script(&["start-node", &n.to_string()]).await;
        }
        stop.store(true, Ordering::SeqCst);
    };
    tokio::join!(load(&stack, &stop, &placed), restarts);
    let orders = placed.into_inner().expect("not poisoned");
    all_complete(&stack, &orders).await;
    cluster.lap("rolling restart done");
    stack.cleanup().await;
}
