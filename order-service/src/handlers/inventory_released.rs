//! `InventoryReleased` → noted in the order's timeline: a compensation of a cancelled order
//! that the saga view shows as it happens. The order's status does not change.

use super::OrderSaga;
use crate::repo::{self, TimelineEntry};
use common::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use contract::Event;
use contract::events::InventoryReleased;

impl Handle<InventoryReleased> for OrderSaga {
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %released.order_id))]
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        released: &InventoryReleased,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        let entry = TimelineEntry::consumed(message);
        if repo::note(uow.conn(), released.order_id, &entry)
            .await?
            .is_none()
        {
            tracing::warn!("stock released for an unknown order; nothing to note");
        }
        Ok(Handled::Done)
    }
}
