//! The saga's events, exactly as they travel: a flat JSON object with the common fields
//! `event_id`, `event_type` and `timestamp`, then the event's own fields.

mod payloads;

pub use payloads::*;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
}

impl Event {
    /// The `event_type` written on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Self::OrderCreated(_) => OrderCreated::NAME,
            Self::InventoryReserved(_) => InventoryReserved::NAME,
            Self::InventoryUnavailable(_) => InventoryUnavailable::NAME,
            Self::PaymentProcessed(_) => PaymentProcessed::NAME,
            Self::PaymentFailed(_) => PaymentFailed::NAME,
            Self::OrderConfirmed(_) => OrderConfirmed::NAME,
            Self::OrderCancelled(_) => OrderCancelled::NAME,
            Self::PaymentRefunded(_) => PaymentRefunded::NAME,
        }
    }

    pub fn routing_key(&self) -> &'static str {
        match self {
            Self::OrderCreated(_) => OrderCreated::ROUTING_KEY,
            Self::InventoryReserved(_) => InventoryReserved::ROUTING_KEY,
            Self::InventoryUnavailable(_) => InventoryUnavailable::ROUTING_KEY,
            Self::PaymentProcessed(_) => PaymentProcessed::ROUTING_KEY,
            Self::PaymentFailed(_) => PaymentFailed::ROUTING_KEY,
            Self::OrderConfirmed(_) => OrderConfirmed::ROUTING_KEY,
            Self::OrderCancelled(_) => OrderCancelled::ROUTING_KEY,
            Self::PaymentRefunded(_) => PaymentRefunded::ROUTING_KEY,
        }
    }

    /// The order this event belongs to; it travels as the AMQP `correlation_id`.
    pub fn order_id(&self) -> Uuid {
        match self {
            Self::OrderCreated(e) => e.order_id,
            Self::InventoryReserved(e) => e.order_id,
            Self::InventoryUnavailable(e) => e.order_id,
            Self::PaymentProcessed(e) => e.order_id,
            Self::PaymentFailed(e) => e.order_id,
            Self::OrderConfirmed(e) => e.order_id,
            Self::OrderCancelled(e) => e.order_id,
            Self::PaymentRefunded(e) => e.order_id,
        }
    }
}

/// One kind of event as a type, so that a service can name the events it consumes and
/// write one handler per kind (the consumer's `Handle` trait).
pub trait Kind: Sized + Send + Sync + 'static {
    /// The `event_type` written on the wire.
    const NAME: &'static str;
    const ROUTING_KEY: &'static str;

    /// This kind's payload, if `event` is of this kind.
    fn of(event: &Event) -> Option<&Self>;
}

macro_rules! kinds {
    ($($kind:ident => $key:ident),+ $(,)?) => {$(
        impl Kind for $kind {
            const NAME: &'static str = stringify!($kind);
            const ROUTING_KEY: &'static str = routing_key::$key;

            fn of(event: &Event) -> Option<&Self> {
                match event {
                    Event::$kind(payload) => Some(payload),
                    _ => None,
                }
            }
        }
    )+};
}

kinds! {
    OrderCreated => ORDER_CREATED,
    InventoryReserved => INVENTORY_RESERVED,
    InventoryUnavailable => INVENTORY_UNAVAILABLE,
    PaymentProcessed => PAYMENT_PROCESSED,
    PaymentFailed => PAYMENT_FAILED,
    OrderConfirmed => ORDER_CONFIRMED,
    OrderCancelled => ORDER_CANCELLED,
    PaymentRefunded => PAYMENT_REFUNDED,
}

/// An event with its identity and time: the whole message body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Fresh for every event; also the AMQP `message_id` and the inbox key.
    pub event_id: Uuid,
    #[serde(flatten)]
    pub event: Event,
    #[serde(with = "rfc3339_micros")]
    pub timestamp: DateTime<Utc>,
}

impl Envelope {
    /// Wraps an event that happens now.
    pub fn new(event: Event) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event,
            timestamp: Utc::now(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("events always serialize")
    }

    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// RFC 3339 in UTC with microseconds, e.g. `2025-12-16T10:00:00.000000Z`.
mod rfc3339_micros {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
