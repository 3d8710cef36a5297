//! Who consumes what: one tuple of event kinds per service, the map of CONTRACT §4.
//!
//! This is the one place a subscription is written. A service's handler names its tuple
//! (`type Consumes = contract::consumes::Inventory;`), so its dispatch derives from it and a
//! kind added here without a handler there does not compile; every service binds each
//! queue to its tuple's routing keys ([`crate::Service::subscriptions`],
//! [`crate::queues::layout`]), since every service declares every queue at start.

use crate::events::*;
use crate::service::Service;
use wire::event::Kinds;

/// order-service ends each saga, and notes in its timeline the stock a cancellation
/// returned.
pub type Order = (
    InventoryUnavailable,
    PaymentProcessed,
    PaymentFailed,
    InventoryReleased,
);

/// inventory-service reserves stock and releases it.
pub type Inventory = (OrderCreated, OrderCancelled);

/// payment-service charges, and refunds what a cancelled order was charged.
pub type Payment = (InventoryReserved, OrderCancelled);

/// notification-service tells the customer.
pub type Notification = (
    OrderConfirmed,
    OrderCancelled,
    PaymentProcessed,
    PaymentFailed,
    PaymentRefunded,
);

impl Service {
    /// The routing keys this service's queue is bound to (CONTRACT §4): those of its tuple
    /// above. Here, not in `service.rs`, so that the names of the services need not know
    /// the events (events name their publisher).
    pub const fn subscriptions(self) -> &'static [&'static str] {
        match self {
            Self::Order => <Order as Kinds>::ROUTING_KEYS,
            Self::Inventory => <Inventory as Kinds>::ROUTING_KEYS,
            Self::Payment => <Payment as Kinds>::ROUTING_KEYS,
            Self::Notification => <Notification as Kinds>::ROUTING_KEYS,
        }
    }
}
