//! `PaymentFailed` → the customer is told the payment failed, and why.

use super::{NotificationHandler, notify};
use common::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use contract::Event;
use contract::events::PaymentFailed;

impl Handle<PaymentFailed> for NotificationHandler {
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        e: &PaymentFailed,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        let text = format!(
            "Payment of {} for order {} failed after {} attempts: {}.",
            e.amount, e.order_id, e.attempts, e.reason
        );
        notify(uow, &message.envelope, text).await
    }
}
