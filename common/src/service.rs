//! Which service a process is: the four participants of the saga by name, and the
//! [`Descriptor`] each service hands to `common` to say what else it is.
//!
//! The names are part of the wire contract (queue names, the AMQP `app_id`, who publishes
//! each event), as is the map of who consumes what ([`Service::subscriptions`]): CONTRACT §4
//! wants every service to declare every queue with its bindings, so that no event is lost
//! because its consumer has not started yet. Everything else about a service — its port,
//! its database, its API's description, and the handlers behind its subscriptions — lives
//! in its own crate and reaches `common` through its [`Descriptor`].

use crate::events::Event;
use crate::events::routing_key::*;

/// The four services of the saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Order,
    Inventory,
    Payment,
    Notification,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Order,
        Service::Inventory,
        Service::Payment,
        Service::Notification,
    ];

    /// `order`, `inventory`, …: in queue and database names.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Inventory => "inventory",
            Self::Payment => "payment",
            Self::Notification => "notification",
        }
    }

    /// `order-service`, …: the binary, the AMQP `app_id`, the log `service` field.
    pub fn name(self) -> &'static str {
        match self {
            Self::Order => "order-service",
            Self::Inventory => "inventory-service",
            Self::Payment => "payment-service",
            Self::Notification => "notification-service",
        }
    }

    /// The routing keys this service's queue is bound to (CONTRACT §4). Every service
    /// declares every queue, so each needs this map; a service's own [`Descriptor`], whose
    /// list comes from its handlers, must agree with it, which [`Descriptor::new`] checks
    /// at compile time.
    pub const fn subscriptions(self) -> &'static [&'static str] {
        match self {
            Self::Order => &[INVENTORY_UNAVAILABLE, PAYMENT_PROCESSED, PAYMENT_FAILED],
            Self::Inventory => &[ORDER_CREATED, ORDER_CANCELLED],
            Self::Payment => &[INVENTORY_RESERVED, ORDER_CANCELLED],
            Self::Notification => &[
                ORDER_CONFIRMED,
                ORDER_CANCELLED,
                PAYMENT_PROCESSED,
                PAYMENT_FAILED,
                PAYMENT_REFUNDED,
            ],
        }
    }

    /// The routing keys of the audit queue (`<exchange>.audit`): the events the saga view
    /// needs that order-service neither publishes nor consumes. The others it records
    /// itself, in the transactions that publish or consume them.
    pub const AUDITED: &'static [&'static str] = &[INVENTORY_RESERVED, PAYMENT_REFUNDED];

    /// The service that publishes `event` (CONTRACT §4).
    pub fn publisher_of(event: &Event) -> Service {
        match event {
            Event::OrderCreated(_) | Event::OrderConfirmed(_) | Event::OrderCancelled(_) => {
                Service::Order
            }
            Event::InventoryReserved(_) | Event::InventoryUnavailable(_) => Service::Inventory,
            Event::PaymentProcessed(_) | Event::PaymentFailed(_) | Event::PaymentRefunded(_) => {
                Service::Payment
            }
        }
    }
}

/// What a service tells `common` about itself; each service crate has one, built with
/// [`Descriptor::new`], and hands it to `CommonConfig::from_vars`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    pub service: Service,
    /// The port of the default `HTTP_ADDR` (on every interface).
    pub port: u16,
    /// The database of the default `DATABASE_URL`.
    pub database: &'static str,
    /// The OpenAPI document's description.
    pub description: &'static str,
    /// The routing keys its queue is bound to: its handlers' `Subscriptions::ROUTING_KEYS`.
    pub subscriptions: &'static [&'static str],
}

impl Descriptor {
    /// Fails to compile (in a `const`) when `subscriptions` is not the contract's list for
    /// `service`: a handler added without its binding elsewhere, or the other way round.
    pub const fn new(
        service: Service,
        port: u16,
        database: &'static str,
        description: &'static str,
        subscriptions: &'static [&'static str],
    ) -> Self {
        assert!(
            same_keys(subscriptions, service.subscriptions()),
            "the service's handlers and Service::subscriptions disagree"
        );
        Self {
            service,
            port,
            database,
            description,
            subscriptions,
        }
    }

    /// `order-service`, …
    pub fn name(&self) -> &'static str {
        self.service.name()
    }
}

/// Whether `a` and `b` hold the same routing keys, in any order.
const fn same_keys(a: &[&str], b: &[&str]) -> bool {
    a.len() == b.len() && all_in(a, b) && all_in(b, a)
}

/// Whether every key of `a` is in `b`.
const fn all_in(a: &[&str], b: &[&str]) -> bool {
    let mut i = 0;
    while i < a.len() {
        let mut found = false;
        let mut j = 0;
        while j < b.len() {
            if same_str(a[i], b[j]) {
                found = true;
            }
            j += 1;
        }
        if !found {
            return false;
        }
        i += 1;
    }
    true
}

const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_takes_exactly_the_events_order_service_does_not_see() {
        let all = [
            ORDER_CREATED,
            INVENTORY_RESERVED,
            INVENTORY_UNAVAILABLE,
            PAYMENT_PROCESSED,
            PAYMENT_FAILED,
            ORDER_CONFIRMED,
            ORDER_CANCELLED,
            PAYMENT_REFUNDED,
        ];
        let published_by_order = [ORDER_CREATED, ORDER_CONFIRMED, ORDER_CANCELLED];
        let unseen: Vec<&str> = all
            .into_iter()
            .filter(|key| !published_by_order.contains(key))
            .filter(|key| !Service::Order.subscriptions().contains(key))
            .collect();
        assert!(same_keys(&unseen, Service::AUDITED));
    }

    #[test]
    fn keys_compare_as_sets() {
        assert!(same_keys(&["a.b", "c.d"], &["c.d", "a.b"]));
        assert!(!same_keys(&["a.b"], &["a.c"]));
        assert!(!same_keys(&["a.b"], &["a.b", "c.d"]));
        assert!(!same_keys(&["a.b", "a.b"], &["a.b", "c.d"]));
    }
}
