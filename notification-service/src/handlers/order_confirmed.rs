//! `OrderConfirmed` → the customer is thanked.

use super::{NotificationHandler, notify};
use common::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use contract::Event;
use contract::events::OrderConfirmed;

impl Handle<OrderConfirmed> for NotificationHandler {
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        e: &OrderConfirmed,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        let text = format!(
            "Order {} confirmed for {}: total {}. Thank you!",
            e.order_id, e.customer_id, e.total_amount
        );
        notify(uow, &message.envelope, text).await
    }
}
