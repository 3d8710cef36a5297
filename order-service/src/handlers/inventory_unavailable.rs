//! `InventoryUnavailable` → the order is cancelled (`INVENTORY_UNAVAILABLE`).

use super::{OrderSaga, end};
use crate::domain::Outcome;
use common::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use contract::Event;
use contract::events::{CancellationReason, InventoryUnavailable};

impl Handle<InventoryUnavailable> for OrderSaga {
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %message.envelope.event.order_id()))]
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        _event: &InventoryUnavailable,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        end(
            uow,
            message,
            Outcome::Cancelled(CancellationReason::InventoryUnavailable),
        )
        .await
    }
}
