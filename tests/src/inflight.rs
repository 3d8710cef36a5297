//! What a fault test asserts at the moment it strikes: the work it strikes is still in
//! flight — messages queued for the victim (or delivered to it and not acked), orders still
//! `PENDING`, requests waiting unread in a server's socket. A test that struck after the
//! work had finished would fail here instead of passing by luck.

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
        let (ready, unacked) = self.queue_counts_for(service).await;
        ready + unacked
    }

    /// `service`'s queue's messages: (ready, delivered to a consumer and not yet acked).
    pub async fn queue_counts_for(&self, service: Service) -> (u64, u64) {
        let queue = contract::queue(&self.name, service);
        let counts = TestBroker::queue_counts(&queue, self.rabbitmq_node.as_deref())
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        counts
            .get(&queue)
            .copied()
            .unwrap_or_else(|| panic!("queue {queue} does not exist"))
    }

    /// Waits until exactly `count` messages of `service`'s queue are delivered to its
    /// consumers and not acked (none ready): they are in the hands of the service (frozen,
    /// or busy with them), which is what a strike on the service must hit.
    pub async fn await_unacked(&self, service: Service, count: u64) {
        self.await_counts(service, 0, count).await;
    }

    /// Waits until `service`'s queue holds exactly `ready` messages ready and `unacked`
    /// delivered and not acked.
    pub async fn await_counts(&self, service: Service, ready: u64, unacked: u64) {
        eventually(
            &format!(
                "{ready} ready and {unacked} unacked messages for {}",
                service.name()
            ),
            Duration::from_secs(60),
            || async {
                match self.queue_counts_for(service).await {
                    found if found == (ready, unacked) => Ok(()),
                    (r, u) => Err(format!("{r} ready, {u} unacked")),
                }
            },
        )
        .await;
    }

    /// Connections to `service`'s first instance whose request bytes sit unread in the
    /// server's socket (its process frozen, or not yet reading): the requests reached the
    /// server. Read from the kernel's table of TCP sockets (`/proc/net/tcp`), so it sees
    /// what a frozen process cannot report.
    pub fn requests_unread_by(&self, service: Service) -> usize {
        let port = self.instances(service)[0].addr.port();
        let table = std::fs::read_to_string("/proc/net/tcp").expect("Linux's /proc/net/tcp");
        unread_connections(&table, port)
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

/// In `/proc/net/tcp`, the established connections whose local port is `port` and whose
/// receive queue holds bytes the process has not read.
fn unread_connections(table: &str, port: u16) -> usize {
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx_queue:rx_queue …
            let (Some(local), Some(state), Some(queues)) =
                (fields.get(1), fields.get(3), fields.get(4))
            else {
                return false;
            };
            let local_port = local
                .rsplit(':')
                .next()
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            let unread = queues
                .split(':')
                .nth(1)
                .and_then(|hex| u64::from_str_radix(hex, 16).ok());
            // State 01 is ESTABLISHED.
            local_port == Some(port) && *state == "01" && unread.is_some_and(|n| n > 0)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::unread_connections;

    #[test]
    fn counts_established_connections_to_the_port_with_unread_bytes() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 1 1
   1: 0100007F:1F90 0100007F:C350 01 00000000:000000C8 00:00000000 00000000     0        0 2 1
   2: 0100007F:1F90 0100007F:C351 01 00000000:00000000 00:00000000 00000000     0        0 3 1
   3: 0100007F:C352 0100007F:1F90 01 00000000:000000C8 00:00000000 00000000     0        0 4 1
   4: 0100007F:1F90 0100007F:C353 01 00000000:000000A0 00:00000000 00000000     0        0 5 1";
        // Port 0x1F90 = 8080: the listener (0A) and the idle connection do not count, nor
        // the client side of a connection (local port C352).
        assert_eq!(unread_connections(table, 8080), 2);
    }
}
