//! `PaymentProcessed` → the order is completed.

use super::{OrderSaga, end};
use crate::domain::Outcome;
use common::amqp::consumer::{Handle, Handled, HandlerError, Incoming};
use common::events::PaymentProcessed;
use common::store::UnitOfWork;

impl Handle<PaymentProcessed> for OrderSaga {
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        _event: &PaymentProcessed,
        message: &Incoming,
    ) -> Result<Handled, HandlerError> {
        end(self, uow, message, Outcome::Completed).await
    }
}
