//! `PaymentProcessed` → the customer is told the payment arrived.

use super::{NotificationHandler, notify};
use common::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use contract::Event;
use contract::events::PaymentProcessed;

impl Handle<PaymentProcessed> for NotificationHandler {
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        e: &PaymentProcessed,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        let text = format!(
            "Payment of {} received for order {} (attempt {}).",
            e.amount, e.order_id, e.attempts
        );
        notify(uow, &message.envelope, text).await
    }
}
