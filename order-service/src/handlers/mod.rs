//! What the consumed events do to an order: inventory or payment news ends it, once. One
//! file per consumed event, each naming the ending it asks for; [`crate::ending`] does the rest.
//! [`OrderSaga::Consumes`] names the published language's list for this service
//! (`contract::consumes`); its queue's bindings and the dispatch derive from it.

pub mod inventory_unavailable;
pub mod payment_failed;
pub mod payment_processed;

use crate::domain::Outcome;
use crate::ending::{self, Cause};
use crate::intake::Endings;
use common::amqp::consumer::{Handled, HandlerError, Incoming, MessageHandler};
use common::store::UnitOfWork;
use contract::Event;

/// Ends orders on `InventoryUnavailable`, `PaymentProcessed` and `PaymentFailed`.
pub struct OrderSaga {
    /// Told of every order ended here, so its place under `MAX_PENDING_ORDERS` frees at once.
    pub endings: Endings,
}

impl MessageHandler for OrderSaga {
    type Consumes = contract::consumes::Order;
}

/// Ends the message's order with `outcome` (see [`ending::end`]); an order that has ended
/// already, or is unknown, stays as it is.
async fn end(
    saga: &OrderSaga,
    uow: &mut UnitOfWork,
    message: &Incoming<Event>,
    outcome: Outcome,
) -> Result<Handled, HandlerError> {
    let order_id = message.envelope.event.order_id();
    if ending::end(uow, order_id, outcome, Cause::Event(message))
        .await?
        .is_some()
    {
        // Before the commit: should it fail, the message comes again and the next count of
        // `PENDING` orders (a fraction of a second later) puts the place right.
        saga.endings.ended(1);
    }
    Ok(Handled::Done)
}
