//! Queue names, derived from the exchange name so that two stacks with different exchanges
//! never see each other's messages, and the broker [`layout`] every service declares.
//!
//! For each service `s`: a durable queue `<exchange>.<s>` bound to the events `s` consumes
//! and its dead-letter queue `<exchange>.<s>.dlq`. Besides, `<exchange>.audit` gets a copy
//! of the events order-service's saga view needs and neither publishes, consumes nor reads
//! from their publisher ([`AUDITED`]). (The delay queues of the retries are the
//! machinery's, named after the queue they return to: see `common::amqp::topology`.)

use crate::events::routing_key::{INVENTORY_RESERVED, PAYMENT_REFUNDED};
use crate::service::Service;
use wire::layout::{ConsumerQueue, CopyQueue, Layout};

/// `<exchange>.<service>`: the queue a service consumes from; its replicas share it.
pub fn queue(exchange: &str, service: Service) -> String {
    format!("{exchange}.{}", service.short_name())
}

/// `<exchange>.<service>.dlq`: where a message that cannot be handled ends.
pub fn dead_letter_queue(exchange: &str, service: Service) -> String {
    format!("{}.dlq", queue(exchange, service))
}

/// `<exchange>.audit`: the copies of [`AUDITED`] for order-service's saga view
/// (`GET /api/orders/{id}/saga`).
pub fn audit_queue(exchange: &str) -> String {
    format!("{exchange}.audit")
}

/// The routing keys of the audit queue: the events the saga view needs that order-service
/// neither publishes nor consumes, nor reads from their publisher. The events it publishes
/// or consumes it records itself, in the transactions that do so; `InventoryReserved`, one
/// per saga, it reads from inventory-service's reservation when the view is asked for
/// (a copy of it cost every saga one more persisted, delivered and acked message).
pub const AUDITED: &[&str] = &[PAYMENT_REFUNDED];

/// What the audit queue was once bound to: every event (`#`, which would make every
/// publish routable, so `mandatory` would never catch a missing consumer binding), then
/// `InventoryReserved`.
pub const AUDIT_RETIRED: &[&str] = &["#", INVENTORY_RESERVED];

/// `service`'s queue with its dead-letter queue and bindings.
pub fn consumer_queue(exchange: &str, service: Service) -> ConsumerQueue {
    ConsumerQueue {
        owner: service.name(),
        name: queue(exchange, service),
        dead_letters: dead_letter_queue(exchange, service),
        bindings: service.subscriptions(),
    }
}

/// Every queue on `exchange`: what each service declares at start (CONTRACT §4), so no
/// event is dropped because its consumer has not started yet.
pub fn layout(exchange: &str) -> Layout {
    Layout {
        consumers: Service::ALL
            .into_iter()
            .map(|service| consumer_queue(exchange, service))
            .collect(),
        copies: vec![CopyQueue {
            name: audit_queue(exchange),
            bindings: AUDITED,
            retired: AUDIT_RETIRED,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::KINDS;

    #[test]
    fn names_derive_from_the_exchange() {
        assert_eq!(queue("orders", Service::Inventory), "orders.inventory");
        assert_eq!(
            dead_letter_queue("orders", Service::Payment),
            "orders.payment.dlq"
        );
        assert_eq!(audit_queue("orders"), "orders.audit");
    }

    #[test]
    fn the_audit_takes_exactly_the_events_order_service_does_not_see_or_read() {
        let mut unseen: Vec<&str> = KINDS
            .iter()
            .filter(|kind| kind.publisher != Service::Order)
            .map(|kind| kind.routing_key)
            .filter(|key| !Service::Order.subscriptions().contains(key))
            .collect();
        unseen.sort();
        let mut audited_or_read = [AUDITED, &[INVENTORY_RESERVED]].concat();
        audited_or_read.sort();
        assert_eq!(unseen, audited_or_read);
        assert!(AUDIT_RETIRED.iter().all(|key| !AUDITED.contains(key)));
    }

    #[test]
    fn every_event_has_a_consumer_and_every_service_a_queue() {
        let layout = layout("orders");
        assert_eq!(layout.consumers.len(), Service::ALL.len());
        for kind in KINDS {
            assert!(
                layout
                    .consumers
                    .iter()
                    .any(|queue| queue.bindings.contains(&kind.routing_key)),
                "no service consumes {}",
                kind.name
            );
        }
    }
}
