//! Removing a stack's queues and exchange once its test ends.

use super::{TestBroker, connect_any};
use common::amqp::topology::Topology;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};

/// Deletes every queue of the stack and its exchange.
pub async fn delete_topology(topology: &Topology, url: &str) {
    let Ok(connection) = connect_any(url).await else {
        return;
    };
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    let mut queues = vec![format!("{}.tap", topology.exchange)];
    let layout = &topology.layout;
    queues.extend(layout.copies.iter().map(|copy| copy.name.clone()));
    for queue in &layout.consumers {
        queues.push(queue.name.clone());
        queues.push(queue.dead_letters.clone());
        for delay in &topology.retry_delays {
            queues.push(topology.retry_queue(queue, *delay));
        }
    }
    // And any other queue of the stack, e.g. retry queues of delays a test chose.
    if let Ok(others) = TestBroker::queue_counts(&format!("{}.", topology.exchange), None).await {
        queues.extend(others.into_keys());
    }
    for queue in queues {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = channel
        .exchange_delete(
            topology.exchange.as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await;
    let _ = connection.close(200, "cleaned up".into()).await;
}
