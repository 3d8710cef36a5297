//! `PaymentProcessed` → the order is completed.

use super::{OrderSaga, end};
use crate::domain::Outcome;
use common::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use contract::Event;
use contract::events::PaymentProcessed;

impl Handle<PaymentProcessed> for OrderSaga {
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %message.envelope.event.order_id()))]
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        _event: &PaymentProcessed,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        end(uow, message, Outcome::Completed).await
    }
}
