//! `PaymentRefunded` → the customer is told of the refund.

use super::Notice;
use contract::events::PaymentRefunded;

impl Notice for PaymentRefunded {
    fn text(&self) -> String {
        format!(
            "Payment of {} for order {} refunded.",
            self.amount, self.order_id
        )
    }
}
