//! A real network partition under load, with the services on the node that is cut off.
//!
//! `Partition::cut` drops every packet of the Erlang distribution connections between the
//! node and the other two (`iptables` on the distribution ports `tests/rabbit-cluster.sh`
//! pins per node, both directions — see the script). Nothing stops the node: it keeps its
//! clients' AMQP connections, and only RabbitMQ's own handling of the partition decides
//! what happens to them. The cluster runs `cluster_partition_handling = pause_minority`
//! (the usual choice with quorum queues, and what `deploy/rabbitmq-cluster.conf` sets): the
//! cut-off node, a minority of one, pauses once `net_ticktime` (10 s there) passes without
//! a word from the others, closing its client connections, so the services go round their
//! `AMQP_URL` list to a node of the majority, where the quorum queues elect new leaders. A
//! cut that did not really partition the node would leave them where they were.

use saga_tests::cluster::partition::{Partition, paused};
use saga_tests::cluster::queues::{leader_of, make_leader, work_held_by};
use saga_tests::cluster::{all_complete, all_moved_off, load, node_of, placed_beyond};
use saga_tests::{Service, contract, eventually};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Cuts off the node every service is on while it leads the payment queue with
/// reservations waiting there, an order posted every 100 ms throughout. Asserts that the
/// services move to the majority, that the cut-off node paused (its VM answers, its
/// RabbitMQ does not run) and the payment queue elected a leader on the majority, and that
/// every order placed until then completes on the majority alone. Then heals the
/// partition: the node runs again by itself and every quorum queue has its replica there
/// again. Every order is `COMPLETED` (the saga timeout is an hour away, so a lost message
/// would leave its order `PENDING`) and the §6 invariants hold: no payment, reservation or
/// notification doubled by the messages the minority delivered and could not settle.
#[tokio::test]
async fn a_partition_moves_the_services_to_the_majority_and_loses_no_order() {
    let (cluster, stack) = saga_tests::cluster::start().await;
    let queue = contract::queue(&stack.name, Service::Payment);
    // The minority: the node every service is on (as `start` asserted).
    let victim = node_of(&stack, Service::Order).await;
    let survivor = victim % 3 + 1;
    make_leader(victim, &queue).await;
    let stop = AtomicBool::new(false);
    let placed = Mutex::new(Vec::new());
    let partition = async {
        work_held_by(&stack, victim).await;
        let cut = Partition::cut(victim).await;
        let cut_at = Instant::now();
        stack.resume(Service::Payment);
        let during = placed.lock().expect("not poisoned").len();
        placed_beyond(
            &placed,
            during,
            10,
            "orders placed while the node is cut off",
        )
        .await;
        all_moved_off(&stack, victim).await;
        eprintln!(
            "node {victim} cut off: every service moved off it {:?} after the cut",
            cut_at.elapsed()
        );
        eventually(
            &format!("node {victim} to pause (pause_minority)"),
            Duration::from_secs(30),
            || paused(victim),
        )
        .await;
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
        // The majority finishes every saga so far without the cut-off node.
        let so_far = placed.lock().expect("not poisoned").clone();
        for order in stack.final_orders(&so_far).await {
            assert_eq!(
                order["status"], "COMPLETED",
                "during the partition: {order}"
            );
        }
        cluster.lap(&format!("{} orders completed while cut off", so_far.len()));
        cut.heal().await;
        cluster.lap("partition healed, node back");
        stop.store(true, Ordering::SeqCst);
    };
    tokio::join!(load(&stack, &stop, &placed), partition);
    let orders = placed.into_inner().expect("not poisoned");
    all_complete(&stack, &orders).await;
    stack.cleanup().await;
}
