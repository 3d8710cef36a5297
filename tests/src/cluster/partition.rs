//! A real network partition: node `n` cut off the other two by dropping, with `iptables`,
//! every packet of the Erlang distribution connections between it and them
//! (`tests/rabbit-cluster.sh partition`; its comments say which rules and why). The node
//! keeps running and keeps its clients' connections: nothing stops it but what RabbitMQ
//! does about the partition. The cluster runs `cluster_partition_handling = pause_minority`,
//! so the cut-off node, a minority of one, pauses (stops its RabbitMQ, closing its client
//! connections) until it sees the others again.

use super::{SCRIPT, script};
use std::time::Duration;

/// The rules of a partition, removed when this is dropped — also when the test panics —
/// so that no later test (or anything else on this machine) inherits them.
pub struct Partition {
    node: usize,
}

impl Partition {
    /// Cuts node `n` off the other two.
    pub async fn cut(n: usize) -> Self {
        // The guard first: a script that failed half-way still leaves rules to remove.
        let partition = Self { node: n };
        script(&["partition", &n.to_string()]).await;
        partition
    }

    /// Removes the rules, waits until the cut-off node runs again (pause_minority restarts
    /// it once it sees the majority) and every quorum queue has its replica there again.
    pub async fn heal(self) {
        script(&["heal"]).await;
        script(&["rejoin", &self.node.to_string()]).await;
        super::queues::await_quorum_plus_one(self.node).await;
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = std::process::Command::new(SCRIPT).arg("heal").status();
    }
}

/// `Ok` when node `n` has paused as pause_minority does: its Erlang VM answers, its
/// RabbitMQ does not run. (A node that was stopped or killed would not answer at all.)
pub async fn paused(n: usize) -> Result<(), String> {
    let node = format!("saga-{n}@localhost");
    let diagnose = |check: &'static str| {
        let node = node.clone();
        async move {
            tokio::time::timeout(
                Duration::from_secs(30),
                tokio::process::Command::new("rabbitmq-diagnostics")
                    .args(["-q", "-n", &node, check])
                    .output(),
            )
            .await
            .map_err(|_| format!("rabbitmq-diagnostics {check} hung"))?
            .map_err(|error| format!("rabbitmq-diagnostics does not run: {error}"))
            .map(|output| output.status.success())
        }
    };
    match (diagnose("ping").await?, diagnose("check_running").await?) {
        (true, false) => Ok(()),
        (true, true) => Err(format!("{node} still runs RabbitMQ")),
        (false, _) => Err(format!("{node}'s VM does not answer")),
    }
}
