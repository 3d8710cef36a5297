//! What a fault test asserts at the moment it strikes: the work it strikes is still in
//! flight — messages queued for the victim, orders still `PENDING`. A test that struck
//! after the work had finished would fail here instead of passing by luck.

use crate::broker::TestBroker;
use crate::contract;
use crate::eventually;
use crate::stack::TestStack;
use ::contract::Service;
use serde_json::Value;
use std::time::Duration;

impl TestStack {
    /// Messages in `service`'s queue, ready or delivered to a consumer and not yet acked.
    pub async fn queued_for(&self, service: Service) -> u64 {
        let queue = contract::queue(&self.name, service);
        let counts = TestBroker::queue_counts(&queue, self.rabbitmq_node.as_deref())
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let (ready, unacked) = counts
            .get(&queue)
            .copied()
            .unwrap_or_else(|| panic!("queue {queue} does not exist"));
        ready + unacked
    }

    /// Waits until exactly `count` messages are queued for `service` (which must not be
    /// consuming them: paused, cut off or down).
    pub async fn await_queued(&self, service: Service, count: u64) {
        eventually(
            &format!("{count} messages queued for {}", service.name()),
            Duration::from_secs(60),
            || async {
                match self.queued_for(service).await {
                    found if found == count => Ok(()),
                    found => Err(format!("{found} queued")),
                }
            },
        )
        .await;
    }

    /// Asserts every one of `orders` is still `PENDING` now.
    pub async fn assert_pending(&self, orders: &[Value]) {
        for order in orders {
            let id = order["id"].as_str().expect("an order id");
            let now = self.order(id).await;
            assert_eq!(
                now["status"], "PENDING",
                "the fault came too late for {now}"
            );
        }
    }

    /// Waits until every one of `orders` has ended; returns them as they ended.
    pub async fn final_orders(&self, orders: &[Value]) -> Vec<Value> {
        let mut done = Vec::new();
        for order in orders {
            done.push(
                self.final_order(order["id"].as_str().expect("an order id"))
                    .await,
            );
        }
        done
    }
}
