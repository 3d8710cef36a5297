//! The saga's four events as they travel: a flat JSON body in CONTRACT §4's shape (the
//! common `event_id`, `event_type`, `timestamp`, then the order's fields; 270–345
//! bytes) and the AMQP properties the services set on every publish.

use contract::Service;
use contract::events::{self, EventKind, KINDS};
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable};
use serde::{Deserialize, Serialize};
use sqlx::types::chrono::Utc;
use uuid::Uuid;

/// Persistent (written to disk by RabbitMQ before it confirms).
const PERSISTENT: u8 = 2;

/// The header naming the event that caused this one (CONTRACT §4).
const CAUSATION_HEADER: &str = "causation_id";

/// The events of the happy path, in saga order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    OrderCreated,
    InventoryReserved,
    PaymentProcessed,
    OrderConfirmed,
}

impl Kind {
    /// The published language's entry for this kind: its name, routing key and publisher
    /// are the contract's, never restated here.
    fn contract(self) -> &'static EventKind {
        let name = match self {
            Self::OrderCreated => <events::OrderCreated as wire::event::Kind>::NAME,
            Self::InventoryReserved => <events::InventoryReserved as wire::event::Kind>::NAME,
            Self::PaymentProcessed => <events::PaymentProcessed as wire::event::Kind>::NAME,
            Self::OrderConfirmed => <events::OrderConfirmed as wire::event::Kind>::NAME,
        };
        KINDS
            .iter()
            .find(|kind| kind.name == name)
            .expect("every event of the happy path is in the contract")
    }

    pub fn name(self) -> &'static str {
        self.contract().name
    }

    pub fn routing_key(self) -> &'static str {
        self.contract().routing_key
    }

    /// The `app_id` of its messages: the service that publishes it.
    fn publisher(self) -> &'static str {
        self.contract().publisher.name()
    }
}

/// One product line of an order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub product_id: String,
    pub quantity: i32,
}

/// A message body: the order's fields travel with every event, the payment's from
/// `PaymentProcessed` on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub event_id: Uuid,
    pub event_type: String,
    /// RFC 3339, UTC; PostgreSQL parses it where a hop stores it.
    pub timestamp: String,
    pub order_id: Uuid,
    pub customer_id: String,
    pub items: Vec<Item>,
    pub total_amount: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

impl Event {
    /// The `OrderCreated` of a new order of one unit of `product`.
    pub fn order_created(order_id: Uuid, product: &str) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: Kind::OrderCreated.name().to_owned(),
            timestamp: now(),
            order_id,
            // bench/outside.py's customer.
            customer_id: "customer-bench".to_owned(),
            items: vec![Item {
                product_id: product.to_owned(),
                quantity: 1,
            }],
            total_amount: 10.0,
            payment_id: None,
            attempts: None,
        }
    }

    /// The event of `kind` this one causes, for the same order.
    pub fn next(&self, kind: Kind) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: kind.name().to_owned(),
            timestamp: now(),
            ..self.clone()
        }
    }

    /// Its entry in the order's timeline, as order-service appends them.
    pub fn timeline_entry(&self, source: Service) -> serde_json::Value {
        serde_json::json!({
            "event_type": self.event_type,
            "event_id": self.event_id,
            "occurred_at": self.timestamp,
            "source": source.name(),
        })
    }

    pub fn total_cents(&self) -> i64 {
        (self.total_amount * 100.0).round() as i64
    }
}

/// An event a hop records in its outbox and publishes once that is committed.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub kind: Kind,
    pub event: Event,
    /// The event that caused it (none for `OrderCreated`).
    pub causation_id: Option<Uuid>,
    /// The body, serialised once: the outbox row's payload and the message are the same
    /// bytes.
    pub body: Vec<u8>,
}

impl Outgoing {
    pub fn new(kind: Kind, event: Event, causation_id: Option<Uuid>) -> Self {
        let body = serde_json::to_vec(&event).expect("an event always serialises");
        Self {
            kind,
            event,
            causation_id,
            body,
        }
    }

    /// What every service sets: persistent, JSON, and the metadata of CONTRACT §4.
    pub fn properties(&self) -> BasicProperties {
        let mut headers = FieldTable::default();
        if let Some(causation_id) = self.causation_id {
            headers.insert(
                CAUSATION_HEADER.into(),
                AMQPValue::LongString(causation_id.to_string().into()),
            );
        }
        BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(PERSISTENT)
            .with_message_id(self.event.event_id.to_string().into())
            .with_type(self.kind.name().into())
            .with_correlation_id(self.event.order_id.to_string().into())
            .with_timestamp(Utc::now().timestamp().max(0) as u64)
            .with_app_id(self.kind.publisher().into())
            .with_headers(headers)
    }
}

/// A delivery as a hop reads it: the body.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub event: Event,
}

impl Incoming {
    pub fn parse(delivery: &Delivery) -> Result<Self, String> {
        let event: Event = serde_json::from_slice(&delivery.data)
            .map_err(|e| format!("a calibration message is not an event: {e}"))?;
        Ok(Self { event })
    }
}

/// RFC 3339, UTC, to the microsecond.
fn now() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_of_a_saga_has_a_body_of_about_three_hundred_bytes() {
        let created = Event::order_created(Uuid::now_v7(), "product-A");
        let mut paid = created.next(Kind::PaymentProcessed);
        paid.payment_id = Some(Uuid::now_v7());
        paid.attempts = Some(1);
        for event in [&created, &created.next(Kind::InventoryReserved), &paid] {
            let bytes = Outgoing::new(Kind::OrderCreated, event.clone(), None)
                .body
                .len();
            assert!((250..=350).contains(&bytes), "{bytes} bytes");
        }
    }

    #[test]
    fn a_caused_event_keeps_the_order_and_gets_its_own_id() {
        let created = Event::order_created(Uuid::now_v7(), "product-A");
        let reserved = created.next(Kind::InventoryReserved);
        assert_eq!(reserved.order_id, created.order_id);
        assert_ne!(reserved.event_id, created.event_id);
        assert_eq!(reserved.event_type, "InventoryReserved");
    }
}
