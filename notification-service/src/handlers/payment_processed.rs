//! `PaymentProcessed` → the customer is told the payment arrived.

use super::Notice;
use contract::events::PaymentProcessed;

impl Notice for PaymentProcessed {
    fn text(&self) -> String {
        format!(
            "Payment of {} received for order {} (attempt {}).",
            self.amount, self.order_id, self.attempts
        )
    }
}
