//! What the consumed events do to an order: inventory or payment news ends it, once. One
//! file per consumed event, each naming the ending it asks for; [`crate::ending`] does the rest.
//! [`OrderSaga::Consumes`] names the published language's list for this service
//! (`contract::consumes`); its queue's bindings and the dispatch derive from it.

pub mod inventory_released;
pub mod inventory_unavailable;
pub mod payment_failed;
pub mod payment_processed;

use crate::domain::Outcome;
use crate::ending::{self, Cause};
use common::consumer::{Handled, HandlerError, Incoming, MessageHandler};
use common::store::UnitOfWork;
use contract::Event;

/// Ends orders on `InventoryUnavailable`, `PaymentProcessed` and `PaymentFailed`; notes
/// `InventoryReleased` in the timeline.
pub struct OrderSaga;

impl MessageHandler for OrderSaga {
    type Consumes = contract::consumes::Order;
}

/// Ends the message's order with `outcome` (see [`ending::end`]); an order that has ended
/// already, or is unknown, stays as it is.
async fn end(
    uow: &mut UnitOfWork,
    message: &Incoming<Event>,
    outcome: Outcome,
) -> Result<Handled, HandlerError> {
    let order_id = message.envelope.event.order_id();
    ending::end(uow, order_id, outcome, Cause::Event(message)).await?;
    Ok(Handled::Done)
}
