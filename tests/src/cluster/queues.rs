//! The stack's quorum queues as the cluster sees them: depths, leaders, and moving a leader
//! where the test wants the work to be when it strikes.

use super::rabbitmqctl;
use crate::{Service, TestStack, contract, eventually};
use std::time::Duration;

/// Messages (ready and unacknowledged) in `queue`, asked of node `via`.
pub async fn queue_messages(via: usize, queue: &str) -> u64 {
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
pub async fn leader_of(via: usize, queue: &str) -> Option<usize> {
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

/// Makes node `n` lead the quorum queue `queue` (`rabbit_quorum_queue:transfer_leadership`,
/// what `rabbitmq-queues rebalance` uses), asked of node `n`.
pub async fn make_leader(n: usize, queue: &str) {
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
pub async fn work_held_by(stack: &TestStack, n: usize) {
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

/// The node leading most of the services' queues, asked of node `via`.
pub async fn leading_node(stack: &TestStack, via: usize) -> usize {
    let mut led = [0usize; 4];
    for service in Service::ALL {
        if let Some(n) = leader_of(via, &contract::queue(&stack.name, service)).await {
            led[n] += 1;
        }
    }
    (1..=3).max_by_key(|n| led[*n]).expect("three nodes")
}

/// `rabbitmq-upgrade await_online_quorum_plus_one` on node `n`: as an operator would check
/// before taking `n` down, every quorum queue keeps a majority without it.
pub async fn await_quorum_plus_one(n: usize) {
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
