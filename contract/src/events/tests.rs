//! The wire format of every event, against literal JSON bodies.

use super::*;
use crate::money::Money;
use crate::quantity::Quantity;
use chrono::DateTime;
use serde_json::{Value, json};

const ORDER: &str = "3f0c2b4e-8a43-4c52-9d0e-6d1f2a3b4c5d";
const PAYMENT: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const EVENT: &str = "0193f2a4-5b6c-7d8e-9f00-112233445566";
const AT: &str = "2025-12-16T10:00:00.123456Z";

fn order_id() -> crate::OrderId {
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
