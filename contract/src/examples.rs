//! One example body of each event, with fixed ids and times: shown in the AsyncAPI
//! document, and validated against the schemas by the tests.

use crate::events::*;
use crate::money::Money;
use crate::quantity::Quantity;
use chrono::{DateTime, Utc};
use uuid::Uuid;

const ORDER: crate::OrderId =
    crate::OrderId::from_uuid(Uuid::from_u128(0x3f0c2b4e_8a43_4c52_9d0e_6d1f2a3b4c5d));
const PAYMENT: Uuid = Uuid::from_u128(0x7a1b2c3d_4e5f_4a6b_8c7d_9e0f1a2b3c4d);

fn items() -> Vec<LineItem> {
    [("product-A", 2), ("product-B", 1)]
        .map(|(product_id, quantity)| LineItem {
            product_id: product_id.into(),
            quantity: Quantity::try_from(quantity).expect("a valid quantity"),
        })
        .to_vec()
}

fn money(amount: f64) -> Money {
    Money::from_decimal(amount).expect("a valid amount")
}

/// The example of each kind, in the order of [`KINDS`].
pub fn all() -> Vec<Envelope> {
    let events = [
        Event::OrderCreated(OrderCreated {
            order_id: ORDER,
            customer_id: "customer-123".into(),
            items: items(),
            total_amount: money(150.0),
        }),
        Event::InventoryReserved(InventoryReserved {
            order_id: ORDER,
            customer_id: "customer-123".into(),
            items: items(),
            total_amount: money(150.0),
        }),
        Event::InventoryUnavailable(InventoryUnavailable {
            order_id: ORDER,
            reason: "Insufficient stock (product-C: requested 1, available 0)".into(),
            items: vec![UnavailableItem {
                product_id: "product-C".into(),
                requested: 1,
                available: 0,
            }],
        }),
        Event::PaymentProcessed(PaymentProcessed {
            order_id: ORDER,
            payment_id: PAYMENT,
            amount: money(150.0),
            attempts: 1,
        }),
        Event::PaymentFailed(PaymentFailed {
            order_id: ORDER,
            amount: money(150.0),
            reason: "Payment declined after 3 attempts".into(),
            attempts: 3,
        }),
        Event::OrderConfirmed(OrderConfirmed {
            order_id: ORDER,
            customer_id: "customer-123".into(),
            total_amount: money(150.0),
        }),
        Event::OrderCancelled(OrderCancelled {
            order_id: ORDER,
            customer_id: "customer-123".into(),
            reason: CancellationReason::PaymentFailed,
            items: items(),
        }),
        Event::PaymentRefunded(PaymentRefunded {
            order_id: ORDER,
            payment_id: PAYMENT,
            amount: money(150.0),
        }),
        Event::InventoryReleased(InventoryReleased {
            order_id: ORDER,
            items: items(),
        }),
    ];
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339("2025-12-16T10:00:00.123456Z")
        .expect("a valid time")
        .into();
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| Envelope {
            event_id: Uuid::from_u128(0x0193f2a4_5b6c_7d8e_9f00_112233445500 + index as u128),
            event,
            timestamp: at,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_one_example_of_each_kind_in_order() {
        let names: Vec<&str> = all().iter().map(|e| e.event.name()).collect();
        let kinds: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        assert_eq!(names, kinds);
    }
}
