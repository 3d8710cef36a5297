//! CONTRACT §6: what must hold once the system goes quiet, checked after every
//! end-to-end test.

use crate::eventually;
use crate::stack::TestStack;
use common::Service;
use serde_json::Value;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Duration;

impl TestStack {
    /// Waits until the system is quiet and every invariant holds in two checks in a row;
    /// panics with the violations otherwise.
    pub async fn assert_invariants(&self) {
        let clean_checks = Cell::new(0);
        eventually(
            "the system to go quiet with every invariant of CONTRACT §6 holding",
            Duration::from_secs(60),
            || async {
                let violations = self.violations().await;
                if violations.is_empty() {
                    clean_checks.set(clean_checks.get() + 1);
                } else {
                    clean_checks.set(0);
                }
                match clean_checks.get() {
                    0 => Err(violations.join("\n")),
                    1 => Err("holds once; checking again".into()),
                    _ => Ok(()),
                }
            },
        )
        .await;
    }

    /// Everything that is not as it must be, in words.
    pub async fn violations(&self) -> Vec<String> {
        let mut found = Vec::new();
        self.check_quiet(&mut found).await;
        let orders = self.all_orders().await;
        check_orders_ended(&orders, &mut found);
        self.check_stock(&orders, &mut found).await;
        for order in &orders {
            self.check_payment(order, &mut found).await;
            self.check_notifications(order, &mut found).await;
        }
        self.check_dead_letters(&mut found).await;
        found
    }

    /// Nothing waits in an outbox, a service queue or a retry queue.
    async fn check_quiet(&self, found: &mut Vec<String>) {
        for service in Service::ALL {
            let backlog = self.outbox_backlog(service).await;
            if backlog > 0 {
                found.push(format!("{} outbox holds {backlog} events", service.name()));
            }
            let mut queues = vec![self.topology.queue(service)];
            queues.extend(
                self.topology
                    .retry_delays
                    .iter()
                    .map(|d| self.topology.retry_queue(service, *d)),
            );
            for queue in queues {
                let depth = self.broker.depth(&queue).await;
                if depth > 0 {
                    found.push(format!("{queue} holds {depth} messages"));
                }
            }
        }
    }

    /// Per product, `available + reserved` is the stock put in, and `reserved` is what
    /// the completed orders took.
    async fn check_stock(&self, orders: &[Value], found: &mut Vec<String>) {
        let mut taken: BTreeMap<String, i64> = BTreeMap::new();
        for order in orders.iter().filter(|o| o["status"] == "COMPLETED") {
            for item in order["items"].as_array().into_iter().flatten() {
                let product = item["product_id"].as_str().unwrap_or_default().to_owned();
                *taken.entry(product).or_default() += item["quantity"].as_i64().unwrap_or_default();
            }
        }
        for (product, (available, reserved)) in self.stock().await {
            let expected = self.expected_stock.get(&product).copied().unwrap_or(0);
            if available + reserved != expected {
                found.push(format!(
                    "{product}: available {available} + reserved {reserved} != {expected} put in"
                ));
            }
            let completed = taken.remove(&product).unwrap_or(0);
            if reserved != completed {
                found.push(format!(
                    "{product}: reserved {reserved} but completed orders took {completed}"
                ));
            }
        }
        for (product, quantity) in taken {
            found.push(format!(
                "completed orders took {quantity} of {product}, which inventory does not know"
            ));
        }
    }

    /// A completed order has one processed payment of its total; a cancelled one none.
    async fn check_payment(&self, order: &Value, found: &mut Vec<String>) {
        let id = order["id"].as_str().unwrap_or_default();
        let payment = self.payment(id).await;
        let status = payment
            .as_ref()
            .and_then(|p| p["status"].as_str().map(str::to_owned));
        match order["status"].as_str() {
            Some("COMPLETED") => match &payment {
                Some(p) if p["status"] == "PROCESSED" && p["amount"] == order["total_amount"] => {}
                _ => found.push(format!("completed order {id} has payment {payment:?}")),
            },
            Some("CANCELLED") if status.as_deref() == Some("PROCESSED") => {
                found.push(format!("cancelled order {id} has a PROCESSED payment"))
            }
            _ => {}
        }
    }

    /// Exactly one final notification, matching how the order ended.
    async fn check_notifications(&self, order: &Value, found: &mut Vec<String>) {
        let id = order["id"].as_str().unwrap_or_default();
        let finals: Vec<String> = self
            .notifications(id)
            .await
            .into_iter()
            .filter(|t| t == "OrderConfirmed" || t == "OrderCancelled")
            .collect();
        let expected = match order["status"].as_str() {
            Some("COMPLETED") => "OrderConfirmed",
            _ => "OrderCancelled",
        };
        if finals != [expected] {
            found.push(format!(
                "order {id} ({}) has final notifications {finals:?}",
                order["status"]
            ));
        }
    }

    /// Dead-letter queues hold only what the test put there.
    async fn check_dead_letters(&self, found: &mut Vec<String>) {
        for service in Service::ALL {
            let queue = self.topology.dead_letter_queue(service);
            let depth = self.broker.depth(&queue).await;
            let expected = self
                .expected_dead_letters
                .get(&service)
                .copied()
                .unwrap_or(0);
            if depth != expected {
                found.push(format!(
                    "{queue} holds {depth} messages, expected {expected}"
                ));
            }
        }
    }
}

fn check_orders_ended(orders: &[Value], found: &mut Vec<String>) {
    for order in orders {
        if !matches!(order["status"].as_str(), Some("COMPLETED" | "CANCELLED")) {
            found.push(format!(
                "order {} is still {}",
                order["id"], order["status"]
            ));
        }
    }
}
