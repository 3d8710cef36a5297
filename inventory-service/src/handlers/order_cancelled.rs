//! `OrderCancelled` → release what the order holds, or remember that it was cancelled first
//! so a late `OrderCreated` reserves nothing.

use super::InventoryHandler;
use crate::stock::{self, OrderRef, Release};
use common::amqp::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use contract::Event;
use contract::events::OrderCancelled;

impl Handle<OrderCancelled> for InventoryHandler {
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        cancelled: &OrderCancelled,
        _message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        release(uow.conn(), cancelled).await?;
        Ok(Handled::Done)
    }
}

async fn release(
    conn: &mut sqlx::PgConnection,
    cancelled: &OrderCancelled,
) -> Result<(), sqlx::Error> {
    let owner = OrderRef {
        order_id: cancelled.order_id,
        customer_id: &cancelled.customer_id,
    };
    match stock::release(conn, owner).await? {
        Release::Released(needs) => {
            tracing::info!(items = ?needs, reason = cancelled.reason.as_str(), "released reservation")
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
    Ok(())
}
