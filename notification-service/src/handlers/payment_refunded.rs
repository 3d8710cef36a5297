//! `PaymentRefunded` → the customer is told of the refund.

use super::{NotificationHandler, notify};
use common::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use contract::Event;
use contract::events::PaymentRefunded;

impl Handle<PaymentRefunded> for NotificationHandler {
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        e: &PaymentRefunded,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        let text = format!("Payment of {} for order {} refunded.", e.amount, e.order_id);
        notify(uow, &message.envelope, text).await
    }
}
