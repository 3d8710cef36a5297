//! `OrderConfirmed` → the customer is thanked.

use super::Notice;
use contract::events::OrderConfirmed;

impl Notice for OrderConfirmed {
    fn text(&self) -> String {
        format!(
            "Order {} confirmed for {}: total {}. Thank you!",
            self.order_id, self.customer_id, self.total_amount
        )
    }
}
