//! `PaymentFailed` → the customer is told the payment failed, and why.

use super::Notice;
use contract::events::PaymentFailed;

impl Notice for PaymentFailed {
    fn text(&self) -> String {
        format!(
            "Payment of {} for order {} failed after {} attempts: {}.",
            self.amount, self.order_id, self.attempts, self.reason
        )
    }
}
