//! `PaymentProcessed` → the customer is told the payment arrived.

use super::{NotificationHandler, notify};
use common::amqp::consumer::{Handle, Handled, HandlerError, Incoming};
use common::events::PaymentProcessed;
use common::store::UnitOfWork;

impl Handle<PaymentProcessed> for NotificationHandler {
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        e: &PaymentProcessed,
        message: &Incoming,
    ) -> Result<Handled, HandlerError> {
        let text = format!(
            "Payment of {} received for order {} (attempt {}).",
            e.amount, e.order_id, e.attempts
        );
        notify(uow, &message.envelope, text).await
    }
}
