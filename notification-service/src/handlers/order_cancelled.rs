//! `OrderCancelled` → the customer is told why.

use super::{NotificationHandler, notify};
use common::amqp::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use contract::Event;
use contract::events::{CancellationReason, OrderCancelled};

impl Handle<OrderCancelled> for NotificationHandler {
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        e: &OrderCancelled,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        let text = format!(
            "Order {} for {} was cancelled: {}.",
            e.order_id,
            e.customer_id,
            match e.reason {
                CancellationReason::InventoryUnavailable => "some items are out of stock",
                CancellationReason::PaymentFailed => "the payment did not go through",
                CancellationReason::Timeout => "it took too long to process",
            }
        );
        notify(uow, &message.envelope, text).await
    }
}
