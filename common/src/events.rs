//! The saga's events, exactly as they travel: a flat JSON object with the common fields
//! `event_id`, `event_type` and `timestamp`, then the event's own fields.

use crate::money::Money;
use crate::quantity::Quantity;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One line of an order: a product and how many of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LineItem {
    #[schema(example = "product-A")]
    pub product_id: String,
    #[schema(value_type = i64, minimum = 1, maximum = 10000, example = 2)]
    pub quantity: Quantity,
}

/// A product inventory could not supply, with what was asked and what was there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnavailableItem {
    pub product_id: String,
    pub requested: u32,
    pub available: u32,
}

/// Why an order ended `CANCELLED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancellationReason {
    InventoryUnavailable,
    PaymentFailed,
    Timeout,
}

impl CancellationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InventoryUnavailable => "INVENTORY_UNAVAILABLE",
            Self::PaymentFailed => "PAYMENT_FAILED",
            Self::Timeout => "TIMEOUT",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::InventoryUnavailable,
            Self::PaymentFailed,
            Self::Timeout,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: Uuid,
    pub customer_id: String,
    pub items: Vec<LineItem>,
    pub total_amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryReserved {
    pub order_id: Uuid,
    pub customer_id: String,
    pub items: Vec<LineItem>,
    pub total_amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryUnavailable {
    pub order_id: Uuid,
    pub reason: String,
    pub items: Vec<UnavailableItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentProcessed {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Money,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub order_id: Uuid,
    pub amount: Money,
    pub reason: String,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    pub order_id: Uuid,
    pub customer_id: String,
    pub total_amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub customer_id: String,
    pub reason: CancellationReason,
    pub items: Vec<LineItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Money,
}

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
            Self::OrderCreated(_) => "OrderCreated",
            Self::InventoryReserved(_) => "InventoryReserved",
            Self::InventoryUnavailable(_) => "InventoryUnavailable",
            Self::PaymentProcessed(_) => "PaymentProcessed",
            Self::PaymentFailed(_) => "PaymentFailed",
            Self::OrderConfirmed(_) => "OrderConfirmed",
            Self::OrderCancelled(_) => "OrderCancelled",
            Self::PaymentRefunded(_) => "PaymentRefunded",
        }
    }

    pub fn routing_key(&self) -> &'static str {
        use routing_key::*;
        match self {
            Self::OrderCreated(_) => ORDER_CREATED,
            Self::InventoryReserved(_) => INVENTORY_RESERVED,
            Self::InventoryUnavailable(_) => INVENTORY_UNAVAILABLE,
            Self::PaymentProcessed(_) => PAYMENT_PROCESSED,
            Self::PaymentFailed(_) => PAYMENT_FAILED,
            Self::OrderConfirmed(_) => ORDER_CONFIRMED,
            Self::OrderCancelled(_) => ORDER_CANCELLED,
            Self::PaymentRefunded(_) => PAYMENT_REFUNDED,
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
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const ORDER: &str = "3f0c2b4e-8a43-4c52-9d0e-6d1f2a3b4c5d";
    const PAYMENT: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    const EVENT: &str = "0193f2a4-5b6c-7d8e-9f00-112233445566";
    const AT: &str = "2025-12-16T10:00:00.123456Z";

    fn order_id() -> Uuid {
        ORDER.parse().unwrap()
    }

    fn items() -> Vec<LineItem> {
        vec![
            LineItem {
                product_id: "product-A".into(),
                quantity: Quantity::try_from(2).unwrap(),
            },
            LineItem {
                product_id: "product-B".into(),
                quantity: Quantity::try_from(1).unwrap(),
            },
        ]
    }

    fn items_json() -> Value {
        json!([{"product_id": "product-A", "quantity": 2}, {"product_id": "product-B", "quantity": 1}])
    }

    fn money(amount: f64) -> Money {
        Money::from_decimal(amount).unwrap()
    }

    /// Serializes the event in an envelope, compares it with the literal body, and parses
    /// the literal back into the same envelope.
    fn assert_wire(event: Event, fields: Value) {
        let envelope = Envelope {
            event_id: EVENT.parse().unwrap(),
            timestamp: DateTime::parse_from_rfc3339(AT).unwrap().into(),
            event,
        };
        let mut expected = json!({"event_id": EVENT, "timestamp": AT});
        expected["event_type"] = envelope.event.name().into();
        for (key, value) in fields.as_object().unwrap() {
            expected[key] = value.clone();
        }
        let actual: Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        assert_eq!(actual, expected);
        let parsed = Envelope::from_json(expected.to_string().as_bytes()).unwrap();
        assert_eq!(parsed, envelope);
    }

    #[test]
    fn order_created_is_flat_json() {
        assert_wire(
            Event::OrderCreated(OrderCreated {
                order_id: order_id(),
                customer_id: "customer-123".into(),
                items: items(),
                total_amount: money(150.0),
            }),
            json!({"order_id": ORDER, "customer_id": "customer-123", "items": items_json(), "total_amount": 150.0}),
        );
    }

    #[test]
    fn inventory_reserved_is_flat_json() {
        assert_wire(
            Event::InventoryReserved(InventoryReserved {
                order_id: order_id(),
                customer_id: "customer-123".into(),
                items: items(),
                total_amount: money(150.0),
            }),
            json!({"order_id": ORDER, "customer_id": "customer-123", "items": items_json(), "total_amount": 150.0}),
        );
    }

    #[test]
    fn inventory_unavailable_is_flat_json() {
        assert_wire(
            Event::InventoryUnavailable(InventoryUnavailable {
                order_id: order_id(),
                reason: "Insufficient stock for product-C".into(),
                items: vec![UnavailableItem {
                    product_id: "product-C".into(),
                    requested: 1,
                    available: 0,
                }],
            }),
            json!({"order_id": ORDER, "reason": "Insufficient stock for product-C",
                   "items": [{"product_id": "product-C", "requested": 1, "available": 0}]}),
        );
    }

    #[test]
    fn payment_processed_is_flat_json() {
        assert_wire(
            Event::PaymentProcessed(PaymentProcessed {
                order_id: order_id(),
                payment_id: PAYMENT.parse().unwrap(),
                amount: money(150.25),
                attempts: 2,
            }),
            json!({"order_id": ORDER, "payment_id": PAYMENT, "amount": 150.25, "attempts": 2}),
        );
    }

    #[test]
    fn payment_failed_is_flat_json() {
        assert_wire(
            Event::PaymentFailed(PaymentFailed {
                order_id: order_id(),
                amount: money(99.99),
                reason: "Payment declined after 3 attempts".into(),
                attempts: 3,
            }),
            json!({"order_id": ORDER, "amount": 99.99, "reason": "Payment declined after 3 attempts", "attempts": 3}),
        );
    }

    #[test]
    fn order_confirmed_is_flat_json() {
        assert_wire(
            Event::OrderConfirmed(OrderConfirmed {
                order_id: order_id(),
                customer_id: "customer-123".into(),
                total_amount: money(150.0),
            }),
            json!({"order_id": ORDER, "customer_id": "customer-123", "total_amount": 150.0}),
        );
    }

    #[test]
    fn order_cancelled_is_flat_json() {
        assert_wire(
            Event::OrderCancelled(OrderCancelled {
                order_id: order_id(),
                customer_id: "customer-123".into(),
                reason: CancellationReason::PaymentFailed,
                items: items(),
            }),
            json!({"order_id": ORDER, "customer_id": "customer-123", "reason": "PAYMENT_FAILED", "items": items_json()}),
        );
    }

    #[test]
    fn payment_refunded_is_flat_json() {
        assert_wire(
            Event::PaymentRefunded(PaymentRefunded {
                order_id: order_id(),
                payment_id: PAYMENT.parse().unwrap(),
                amount: money(10.0),
            }),
            json!({"order_id": ORDER, "payment_id": PAYMENT, "amount": 10.0}),
        );
    }

    #[test]
    fn routing_keys_are_the_originals() {
        let cancelled = Event::OrderCancelled(OrderCancelled {
            order_id: order_id(),
            customer_id: "c".into(),
            reason: CancellationReason::Timeout,
            items: items(),
        });
        assert_eq!(cancelled.routing_key(), "order.cancelled");
        assert_eq!(cancelled.order_id(), order_id());
    }

    #[test]
    fn rejects_bodies_that_are_not_events() {
        for body in [
            "not json",
            r#"{"event_type": "OrderCreated"}"#,
            r#"{"event_id": "0193f2a4-5b6c-7d8e-9f00-112233445566", "timestamp": "2025-12-16T10:00:00Z", "event_type": "Unknown"}"#,
            r#"{"event_id": "x", "timestamp": "2025-12-16T10:00:00Z", "event_type": "OrderConfirmed", "order_id": "3f0c2b4e-8a43-4c52-9d0e-6d1f2a3b4c5d", "customer_id": "c", "total_amount": 1}"#,
            r#"{"event_id": "0193f2a4-5b6c-7d8e-9f00-112233445566", "timestamp": "2025-12-16T10:00:00Z", "event_type": "OrderConfirmed", "order_id": "3f0c2b4e-8a43-4c52-9d0e-6d1f2a3b4c5d", "customer_id": "c", "total_amount": -1}"#,
        ] {
            assert!(Envelope::from_json(body.as_bytes()).is_err(), "{body}");
        }
    }
}
