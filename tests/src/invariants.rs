//! CONTRACT §6: what must hold once the system goes quiet, checked at the end of every
//! end-to-end test. Every answer the checker cannot read (an error status, a body that is
//! not the list it should be, a queue that does not exist) is a violation, never "empty".

use crate::broker::TestBroker;
use crate::contract;
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
        self.check_outboxes(&mut found).await;
        self.check_service_queues(&mut found).await;
        match self.try_all_orders().await {
            Ok(orders) => {
                check_orders_ended(&orders, &mut found);
                self.check_stock(&orders, &mut found).await;
                for order in &orders {
                    self.check_payment(order, &mut found).await;
                    self.check_notifications(order, &mut found).await;
                }
            }
            Err(error) => found.push(format!("the orders cannot be listed: {error}")),
        }
        self.check_dead_letters(&mut found).await;
        // rabbitmqctl is slow: asked only once everything else holds.
        if found.is_empty() {
            self.check_nothing_held(&mut found).await;
        }
        found
    }

    /// Nothing waits in an outbox.
    async fn check_outboxes(&self, found: &mut Vec<String>) {
        for service in Service::ALL {
            let backlog = self.outbox_backlog(service).await;
            if backlog > 0 {
                found.push(format!("{} outbox holds {backlog} events", service.name()));
            }
        }
    }

    /// Every service's queue exists and holds no ready message.
    async fn check_service_queues(&self, found: &mut Vec<String>) {
        for service in Service::ALL {
            let queue = contract::queue(&self.name, service);
            match self.broker.ready(&queue).await {
                Ok(0) => {}
                Ok(depth) => found.push(format!("{queue} holds {depth} ready messages")),
                Err(error) => found.push(error),
            }
        }
    }

    /// No queue of the stack (service, retry or dead-letter queue) has a message ready or
    /// held unacknowledged by a consumer — e.g. during payment's backoff — except the dead
    /// letters [`Self::check_dead_letters`] accounts for.
    async fn check_nothing_held(&self, found: &mut Vec<String>) {
        let counts = match TestBroker::queue_counts(
            &format!("{}.", self.name),
            self.rabbitmq_node.as_deref(),
        )
        .await
        {
            Ok(counts) => counts,
            Err(error) => return found.push(error),
        };
        let tap = format!("{}.tap", self.name);
        for service in Service::ALL {
            for queue in [
                contract::queue(&self.name, service),
                contract::dead_letter_queue(&self.name, service),
            ] {
                if !counts.contains_key(&queue) {
                    found.push(format!("queue {queue} does not exist"));
                }
            }
        }
        for (queue, (ready, unacked)) in counts {
            let dead_letters = queue.ends_with(".dlq");
            if queue == tap {
                continue;
            }
            if unacked > 0 {
                found.push(format!("{queue} has {unacked} unacknowledged deliveries"));
            }
            if ready > 0 && !dead_letters {
                found.push(format!("{queue} holds {ready} ready messages"));
            }
        }
    }

    /// Per product, `available + reserved` is the stock the test put in, and `reserved`
    /// is what the completed orders took; every product the test stocked is still listed.
    async fn check_stock(&self, orders: &[Value], found: &mut Vec<String>) {
        let stock = match self.try_stock().await {
            Ok(stock) => stock,
            Err(error) => return found.push(format!("the stock cannot be read: {error}")),
        };
        let mut taken: BTreeMap<String, i64> = BTreeMap::new();
        for order in orders.iter().filter(|o| o["status"] == "COMPLETED") {
            for item in order["items"].as_array().into_iter().flatten() {
                let product = item["product_id"].as_str().unwrap_or_default().to_owned();
                *taken.entry(product).or_default() += item["quantity"].as_i64().unwrap_or_default();
            }
        }
        for product in self.expected_stock.keys() {
            if !stock.contains_key(product) {
                found.push(format!("inventory no longer lists {product}"));
            }
        }
        for (product, (available, reserved)) in stock {
            let expected = self.expected_stock.get(&product).copied().unwrap_or(0);
            if available + reserved != expected {
                found.push(format!(
                    "{product}: available {available} + reserved {reserved} != {expected} put in"
                ));
            }
            if available < 0 || reserved < 0 {
                found.push(format!(
                    "{product}: available {available}, reserved {reserved} below zero"
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
                "completed orders took {quantity} of {product}, which inventory does not list"
            ));
        }
    }

    /// A completed order has one `PROCESSED` payment of its total; a cancelled one has a
    /// `FAILED` or `REFUNDED` payment or none.
    async fn check_payment(&self, order: &Value, found: &mut Vec<String>) {
        let id = order["id"].as_str().unwrap_or_default();
        let payment = match self.try_payment(id).await {
            Ok(payment) => payment,
            Err(error) => return found.push(format!("payment of {id}: {error}")),
        };
        let status = payment.as_ref().map(|p| p["status"].clone());
        match order["status"].as_str() {
            Some("COMPLETED") => {
                let paid = payment.as_ref().is_some_and(|p| {
                    p["status"] == "PROCESSED"
                        && p["amount"].as_f64().is_some()
                        && p["amount"].as_f64() == order["total_amount"].as_f64()
                });
                if !paid {
                    found.push(format!(
                        "completed order {id} of {} has payment {payment:?}",
                        order["total_amount"]
                    ));
                }
            }
            Some("CANCELLED") => match status.as_ref().and_then(Value::as_str) {
                None if payment.is_none() => {}
                Some("FAILED" | "REFUNDED") => {}
                _ => found.push(format!(
                    "cancelled order {id} has a payment in status {status:?}, not FAILED, \
                     REFUNDED or none"
                )),
            },
            _ => {}
        }
    }

    /// Exactly one final notification, matching how the order ended.
    async fn check_notifications(&self, order: &Value, found: &mut Vec<String>) {
        let id = order["id"].as_str().unwrap_or_default();
        let list = match self
            .get_list(
                Service::Notification,
                &format!("/api/notifications?order_id={id}"),
            )
            .await
        {
            Ok(list) => list,
            Err(error) => return found.push(format!("notifications of {id}: {error}")),
        };
        let finals: Vec<&str> = list
            .iter()
            .filter_map(|n| n["event_type"].as_str())
            .filter(|t| *t == "OrderConfirmed" || *t == "OrderCancelled")
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

    /// Each dead-letter queue holds exactly the messages the test put there, by id.
    async fn check_dead_letters(&self, found: &mut Vec<String>) {
        for service in Service::ALL {
            let queue = contract::dead_letter_queue(&self.name, service);
            let letters = match self.broker.peek(&queue).await {
                Ok(letters) => letters,
                Err(error) => {
                    found.push(error);
                    continue;
                }
            };
            let mut held: Vec<String> = letters
                .iter()
                .map(|letter| match letter.properties.message_id() {
                    Some(id) => id.to_string(),
                    None => format!(
                        "a message without id: {}",
                        String::from_utf8_lossy(&letter.body)
                    ),
                })
                .collect();
            held.sort();
            let mut expected = self
                .expected_dead_letters
                .get(&service)
                .cloned()
                .unwrap_or_default();
            expected.sort();
            if held != expected {
                found.push(format!(
                    "{queue} holds {held:?}, but the test put only {expected:?} there"
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
