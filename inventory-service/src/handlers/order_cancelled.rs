//! `OrderCancelled` → release what the order holds and announce it (`InventoryReleased`,
//! whatever the cancellation's reason), or remember that it was cancelled first so a late
//! `OrderCreated` reserves nothing.

use super::InventoryHandler;
use crate::stock::{self, OrderRef, Release};
use common::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use contract::Event;
use contract::events::{InventoryReleased, OrderCancelled};

impl Handle<OrderCancelled> for InventoryHandler {
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %cancelled.order_id))]
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        cancelled: &OrderCancelled,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        if let Some(released) = release(uow.conn(), cancelled).await? {
            let announcement = Event::InventoryReleased(released);
            uow.publish(announcement, Some(message.envelope.event_id));
        }
        Ok(Handled::Done)
    }
}

/// Releases the order's stock; returns what was released, for the announcement.
async fn release(
    conn: &mut sqlx::PgConnection,
    cancelled: &OrderCancelled,
) -> Result<Option<InventoryReleased>, sqlx::Error> {
    let owner = OrderRef {
        order_id: cancelled.order_id,
        customer_id: &cancelled.customer_id,
    };
    match stock::release(conn, owner).await? {
        Release::Released(needs) => {
            tracing::info!(items = ?needs, reason = cancelled.reason.as_str(), "released reservation");
            // The reservation held every line of the order: those lines are what returns.
            return Ok(Some(InventoryReleased {
                order_id: cancelled.order_id,
                items: cancelled.items.clone(),
            }));
        }
        Release::CancelledFirst => {
            tracing::info!(
                "cancelled before any reservation; a late OrderCreated will reserve nothing"
            )
        }
        Release::NothingHeld => {
            tracing::info!("nothing reserved for this order; nothing to release")
        }
    }
    Ok(None)
}
