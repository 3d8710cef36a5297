//! The saga's events, exactly as they travel: a flat JSON object with the common fields
//! `event_id`, `event_type` and `timestamp`, then the event's own fields (CONTRACT §4).
//! One struct per event ([`payloads`]), the [`Event`] enum that tags them, their routing
//! keys, and who publishes each.

mod payloads;

pub use payloads::*;

use crate::service::Service;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wire::event::{Kind, Published};

/// The whole message body: an event with its id and time.
pub type Envelope = wire::event::Envelope<Event>;

/// Every event of the saga; `event_type` on the wire is the variant's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type")]
pub enum Event {
    OrderCreated(OrderCreated),
    InventoryReserved(InventoryReserved),
    InventoryUnavailable(InventoryUnavailable),
    PaymentProcessed(PaymentProcessed),
    PaymentFailed(PaymentFailed),
    OrderConfirmed(OrderConfirmed),
    OrderCancelled(OrderCancelled),
    PaymentRefunded(PaymentRefunded),
    InventoryReleased(InventoryReleased),
}

/// Routing keys, as the original Python services used them.
pub mod routing_key {
    pub const ORDER_CREATED: &str = "order.created";
    pub const INVENTORY_RESERVED: &str = "inventory.reserved";
    pub const INVENTORY_UNAVAILABLE: &str = "inventory.unavailable";
    pub const PAYMENT_PROCESSED: &str = "payment.processed";
    pub const PAYMENT_FAILED: &str = "payment.failed";
    pub const ORDER_CONFIRMED: &str = "order.confirmed";
    pub const ORDER_CANCELLED: &str = "order.cancelled";
    pub const PAYMENT_REFUNDED: &str = "payment.refunded";
    pub const INVENTORY_RELEASED: &str = "inventory.released";
}

impl Published for Event {
    fn event_type(&self) -> &'static str {
        self.name()
    }

    fn routing_key(&self) -> &'static str {
        Event::routing_key(self)
    }

    fn correlation_id(&self) -> Uuid {
        self.order_id().as_uuid()
    }
}

/// One kind of event as the published language's documents list it (the JSON Schemas,
/// the AsyncAPI document).
#[derive(Debug, Clone, Copy)]
pub struct EventKind {
    /// The `event_type`.
    pub name: &'static str,
    pub routing_key: &'static str,
    pub publisher: Service,
    /// The JSON Schema of its payload struct: its own fields, without the common three.
    pub payload_schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

/// Who publishes an event (CONTRACT §4): one service per kind.
pub trait Publisher: Kind<Event = Event> {
    const PUBLISHER: Service;
}

/// Each kind with its routing key and publisher: the [`Kind`] and [`Publisher`] impls and
/// [`Event`]'s accessors, so a new event is one line here (an event left out does not
/// compile: the accessors' matches are exhaustive).
macro_rules! kinds {
    ($($kind:ident => $key:ident by $publisher:ident),+ $(,)?) => {
        $(
            impl Kind for $kind {
                type Event = Event;
                const NAME: &'static str = stringify!($kind);
                const ROUTING_KEY: &'static str = routing_key::$key;

                fn of(event: &Event) -> Option<&Self> {
                    match event {
                        Event::$kind(payload) => Some(payload),
                        _ => None,
                    }
                }
            }

            impl Publisher for $kind {
                const PUBLISHER: Service = Service::$publisher;
            }
        )+

        /// Every kind of event, in the order of [`Event`].
        pub const KINDS: &[EventKind] = &[$(EventKind {
            name: <$kind as Kind>::NAME,
            routing_key: <$kind as Kind>::ROUTING_KEY,
            publisher: Service::$publisher,
            payload_schema: schemars::SchemaGenerator::root_schema_for::<$kind>,
        }),+];

        impl Event {
            /// The `event_type` written on the wire.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$kind(_) => <$kind as Kind>::NAME,)+
                }
            }

            pub fn routing_key(&self) -> &'static str {
                match self {
                    $(Self::$kind(_) => <$kind as Kind>::ROUTING_KEY,)+
                }
            }

            /// The order this event belongs to; it travels as the AMQP `correlation_id`.
            pub fn order_id(&self) -> crate::OrderId {
                match self {
                    $(Self::$kind(event) => event.order_id,)+
                }
            }

            /// The service that publishes this event.
            pub fn publisher(&self) -> Service {
                match self {
                    $(Self::$kind(_) => <$kind as Publisher>::PUBLISHER,)+
                }
            }
        }
    };
}

kinds! {
    OrderCreated => ORDER_CREATED by Order,
    InventoryReserved => INVENTORY_RESERVED by Inventory,
    InventoryUnavailable => INVENTORY_UNAVAILABLE by Inventory,
    PaymentProcessed => PAYMENT_PROCESSED by Payment,
    PaymentFailed => PAYMENT_FAILED by Payment,
    OrderConfirmed => ORDER_CONFIRMED by Order,
    OrderCancelled => ORDER_CANCELLED by Order,
    PaymentRefunded => PAYMENT_REFUNDED by Payment,
    InventoryReleased => INVENTORY_RELEASED by Inventory,
}

#[cfg(test)]
mod tests;
