//! CONTRACT §6: what must hold once the system goes quiet, checked at the end of every
//! end-to-end test. The checks themselves are `saga_invariants`' (loadgen runs the same);
//! this module collects what they read — every order, the stock the test put in, the dead
//! letters by `message_id` — and adds what only a test can see: outboxes, and every queue's
//! counts from rabbitmqctl. Every answer the checker cannot read (an error status, a body
//! that is not the list it should be, a queue that does not exist) is a violation, never
//! "empty".

use crate::broker::TestBroker;
use crate::contract;
use crate::eventually;
use crate::stack::TestStack;
use ::contract::Service;
use saga_invariants::{
    DeadLetters, Expected, Held, Observed, Order, Payment, Seen, TimelineStep, completed_in, read,
};
use serde_json::Value;
use std::cell::Cell;
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
        found.extend(self.observe().await.violations());
        // rabbitmqctl is slow: asked only once everything else holds.
        if found.is_empty() {
            self.check_nothing_held(&mut found).await;
        }
        found
    }

    /// What the shared checks of CONTRACT §6 read: every order with its payment and
    /// notifications, the stock against what the test put in, and every dead-letter queue
    /// by `message_id` against the poison messages the test put there.
    async fn observe(&self) -> Observed {
        let orders = self
            .try_all_orders()
            .await
            .and_then(|orders| read::<Vec<Order>>("GET /api/orders", &Value::Array(orders)));
        let stock = self.try_stock().await;
        let orders = match orders {
            Ok(orders) => {
                let mut seen = Vec::with_capacity(orders.len());
                for order in orders {
                    let id = order.id.to_string();
                    let payment = self.try_payment(&id).await.and_then(|payment| {
                        payment
                            .map(|p| read::<Payment>(&format!("payment of {id}"), &p))
                            .transpose()
                    });
                    let path = format!("/api/notifications?order_id={id}");
                    let notifications = self
                        .get_list(Service::Notification, &path)
                        .await
                        .and_then(|list| read(&format!("GET {path}"), &Value::Array(list)));
                    let completed_first = if order.cancelled_on_request() {
                        let path = format!("/api/orders/{id}/events");
                        self.get_list(Service::Order, &path)
                            .await
                            .and_then(|list| {
                                read::<Vec<TimelineStep>>(
                                    &format!("GET {path}"),
                                    &Value::Array(list),
                                )
                            })
                            .map(|timeline| completed_in(&timeline))
                    } else {
                        Ok(false)
                    };
                    seen.push(Seen {
                        order,
                        payment,
                        notifications,
                        completed_first,
                    });
                }
                Ok(seen)
            }
            Err(error) => Err(error),
        };
        let expected_stock = self
            .expected_stock
            .iter()
            .map(|(product, put_in)| {
                let expected = Expected {
                    put_in: *put_in,
                    reserved_before: 0,
                };
                (product.clone(), expected)
            })
            .collect();
        let mut dead_letters = Vec::new();
        for service in Service::ALL {
            dead_letters.push(self.dead_letters(service).await);
        }
        Observed {
            orders,
            stock,
            expected_stock,
            dead_letters,
        }
    }

    /// A dead-letter queue's letters by `message_id`, and those the test put there.
    async fn dead_letters(&self, service: Service) -> DeadLetters {
        let queue = contract::dead_letter_queue(&self.name, service);
        let held = self.broker.peek(&queue).await.map(|letters| {
            Held::Ids(
                letters
                    .iter()
                    .map(|letter| match letter.properties.message_id() {
                        Some(id) => id.to_string(),
                        None => format!(
                            "a message without id: {}",
                            String::from_utf8_lossy(&letter.body)
                        ),
                    })
                    .collect(),
            )
        });
        let expected = self
            .expected_dead_letters
            .get(&service)
            .cloned()
            .unwrap_or_default();
        DeadLetters {
            queue,
            held,
            expected,
        }
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
}
