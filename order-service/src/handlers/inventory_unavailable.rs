//! `InventoryUnavailable` → the order is cancelled (`INVENTORY_UNAVAILABLE`).

use super::{OrderSaga, end};
use crate::domain::Outcome;
use common::amqp::consumer::{Handle, Handled, HandlerError, Incoming};
use common::events::{CancellationReason, InventoryUnavailable};
use common::store::UnitOfWork;

impl Handle<InventoryUnavailable> for OrderSaga {
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        _event: &InventoryUnavailable,
        message: &Incoming,
    ) -> Result<Handled, HandlerError> {
        end(
            self,
            uow,
            message,
            Outcome::Cancelled(CancellationReason::InventoryUnavailable),
        )
        .await
    }
}
