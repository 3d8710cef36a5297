//! Which service a process is: the four participants of the saga by name.
//!
//! The names are part of the wire contract (queue names, the AMQP `app_id`, who publishes
//! each event), as is the map of who consumes what ([`Service::subscriptions`]): CONTRACT §4
//! wants every service to declare every queue with its bindings, so that no event is lost
//! because its consumer has not started yet.

use crate::events::Event;
use crate::events::routing_key::*;
use std::net::{Ipv4Addr, SocketAddr};

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

    pub fn default_http_addr(self) -> SocketAddr {
        let port = match self {
            Self::Order => 8000,
            Self::Inventory => 8001,
            Self::Payment => 8002,
            Self::Notification => 8003,
        };
        (Ipv4Addr::UNSPECIFIED, port).into()
    }

    /// The routing keys this service's queue is bound to (CONTRACT §4).
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
