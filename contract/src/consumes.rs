//! Who consumes what: one tuple of event kinds per service, the map of CONTRACT §4.
//!
//! This is the one place a subscription is written. A service's handler names its tuple
//! (`type Consumes = contract::consumes::Inventory;`), so its dispatch derives from it and a
//! kind added here without a handler there does not compile; every service binds each
//! queue to its tuple's routing keys ([`crate::Service::subscriptions`],
//! [`crate::queues::layout`]), since every service declares every queue at start.

use crate::events::*;

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
