//! What each final event tells the customer.

use common::events::{CancellationReason, Event};

/// The notification text for `event`, or `None` for events nobody is told about.
pub fn text(event: &Event) -> Option<String> {
    Some(match event {
        Event::OrderConfirmed(e) => format!(
            "Order {} confirmed for {}: total {}. Thank you!",
            e.order_id, e.customer_id, e.total_amount
        ),
        Event::OrderCancelled(e) => format!(
            "Order {} for {} was cancelled: {}.",
            e.order_id,
            e.customer_id,
            match e.reason {
                CancellationReason::InventoryUnavailable => "some items are out of stock",
                CancellationReason::PaymentFailed => "the payment did not go through",
                CancellationReason::Timeout => "it took too long to process",
            }
        ),
        Event::PaymentProcessed(e) => format!(
            "Payment of {} received for order {} (attempt {}).",
            e.amount, e.order_id, e.attempts
        ),
        Event::PaymentFailed(e) => format!(
            "Payment of {} for order {} failed after {} attempts: {}.",
            e.amount, e.order_id, e.attempts, e.reason
        ),
        Event::PaymentRefunded(e) => {
            format!("Payment of {} for order {} refunded.", e.amount, e.order_id)
        }
        Event::OrderCreated(_) | Event::InventoryReserved(_) | Event::InventoryUnavailable(_) => {
            return None;
        }
    })
}
