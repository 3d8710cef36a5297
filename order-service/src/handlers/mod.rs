//! What the consumed events do to an order: inventory or payment news ends it, once. One
//! file per consumed event, each naming the ending it asks for; [`end`] does the rest.
//! [`OrderSaga::Consumes`] lists the events; the queue's bindings derive from it.

pub mod inventory_unavailable;
pub mod payment_failed;
pub mod payment_processed;

use crate::announcement::Announcement;
use crate::domain::Outcome;
use crate::repo::{self, TimelineEntry};
use common::amqp::consumer::{Handled, HandlerError, Incoming, MessageHandler, Subscriptions};
use common::events::{InventoryUnavailable, PaymentFailed, PaymentProcessed};
use common::store::UnitOfWork;
use common::text_enum::TextEnum;

/// Ends orders on `InventoryUnavailable`, `PaymentProcessed` and `PaymentFailed`.
pub struct OrderSaga;

impl MessageHandler for OrderSaga {
    type Consumes = (InventoryUnavailable, PaymentProcessed, PaymentFailed);
}

/// The routing keys order-service's queue is bound to.
pub const SUBSCRIPTIONS: &[&str] =
    <<OrderSaga as MessageHandler>::Consumes as Subscriptions<OrderSaga>>::ROUTING_KEYS;

/// Ends the message's order with `outcome` and announces it, unless the order has ended
/// already (then the event is only noted in its timeline) or is unknown.
async fn end(
    uow: &mut UnitOfWork,
    message: &Incoming,
    outcome: Outcome,
) -> Result<Handled, HandlerError> {
    let message = &message.envelope;
    let order_id = message.event.order_id();
    let consumed = TimelineEntry::of(message);
    // The event the ending will publish is planned now, so the one update that ends
    // the order also records both steps in its timeline.
    let announcement = Announcement::new();
    let planned = announcement.entry(outcome.status());
    match repo::finish(uow.conn(), order_id, outcome, &[consumed.clone(), planned]).await? {
        Some(order) => {
            announcement.publish(uow, &order, Some(message.event_id));
        }
        None => match repo::note(uow.conn(), order_id, &consumed).await? {
            Some(status) => {
                tracing::info!(
                    status = status.as_str(),
                    "order already ended; the event changes nothing"
                )
            }
            None => tracing::warn!("no such order; the event changes nothing"),
        },
    }
    Ok(Handled::Done)
}
