//! Queue counts from `rabbitmqctl`, which — unlike AMQP — also sees the messages a
//! consumer holds unacked.

use super::TestBroker;
use std::collections::BTreeMap;

impl TestBroker {
    /// Ready and unacknowledged messages of every queue whose name starts with `prefix`,
    /// from `rabbitmqctl` (AMQP cannot see the messages a consumer holds unacked).
    /// `nodes` names the RabbitMQ nodes to ask (`rabbitmqctl -n`, comma-separated; the first
    /// that answers), when not the local one.
    pub async fn queue_counts(
        prefix: &str,
        nodes: Option<&str>,
    ) -> Result<BTreeMap<String, (u64, u64)>, String> {
        let nodes: Vec<Option<&str>> = match nodes {
            Some(list) => list.split(',').map(|node| Some(node.trim())).collect(),
            None => vec![None],
        };
        let mut failure = String::new();
        for node in nodes {
            match list_queues(node).await {
                Ok(stdout) => return parse_queue_counts(&stdout, prefix),
                Err(error) => failure = error,
            }
        }
        Err(failure)
    }
}

/// `rabbitmqctl list_queues` with the ready and unacknowledged counts, on `node`.
async fn list_queues(node: Option<&str>) -> Result<String, String> {
    let mut command = tokio::process::Command::new(rabbitmqctl());
    if let Some(node) = node {
        command.args(["-n", node]);
    }
    let output = command
        .args([
            "-q",
            "list_queues",
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "--no-table-headers",
        ])
        .output()
        .await
        .map_err(|error| format!("rabbitmqctl does not run: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "rabbitmqctl list_queues failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The counts of the queues whose name starts with `prefix`.
fn parse_queue_counts(stdout: &str, prefix: &str) -> Result<BTreeMap<String, (u64, u64)>, String> {
    let mut counts = BTreeMap::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, ready, unacked] = fields[..] else {
            return Err(format!("rabbitmqctl printed {line:?}"));
        };
        if !name.starts_with(prefix) {
            continue;
        }
        let number = |text: &str| {
            text.trim()
                .parse::<u64>()
                .map_err(|_| format!("rabbitmqctl printed {line:?}"))
        };
        counts.insert(name.to_owned(), (number(ready)?, number(unacked)?));
    }
    Ok(counts)
}

/// The `rabbitmqctl` of the test's RabbitMQ (`TEST_RABBITMQCTL` overrides it).
fn rabbitmqctl() -> String {
    std::env::var("TEST_RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".into())
}
