//! What the consumed events do to an order: inventory or payment news ends it, once.

use crate::domain::{OrderStatus, Outcome};
use crate::repo::{self, OrderRow};
use common::Service;
use common::amqp::consumer::{HandlerError, MessageHandler};
use common::events::{CancellationReason, Envelope, Event, OrderCancelled, OrderConfirmed};
use common::store::{Store, UnitOfWork};
use uuid::Uuid;

/// Ends orders on `InventoryUnavailable`, `PaymentProcessed` and `PaymentFailed`.
pub struct OrderSaga {
    pub store: Store,
}

impl MessageHandler for OrderSaga {
    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError> {
        let outcome = match &message.event {
            Event::InventoryUnavailable(_) => {
                Outcome::Cancelled(CancellationReason::InventoryUnavailable)
            }
            Event::PaymentProcessed(_) => Outcome::Completed,
            Event::PaymentFailed(_) => Outcome::Cancelled(CancellationReason::PaymentFailed),
            _ => {
                tracing::debug!("not an event order-service acts on; ignored");
                return Ok(());
            }
        };
        let order_id = message.event.order_id();
        let mut uow = self.store.begin().await?;
        if !uow.claim(message).await? {
            tracing::info!("already handled; skipped");
            return Ok(());
        }
        repo::record_event(uow.conn(), message, message.event.publisher().name()).await?;
        match repo::finish(uow.conn(), order_id, outcome).await? {
            Some(order) => announce_end(&mut uow, &order, Some(message.event_id)).await?,
            None => match repo::find(uow.conn(), order_id).await? {
                Some(order) => tracing::info!(
                    status = order.status().as_str(),
                    "order already ended; the event changes nothing"
                ),
                None => tracing::warn!("no such order; the event changes nothing"),
            },
        }
        uow.commit().await?;
        Ok(())
    }
}

/// Publishes `OrderConfirmed` or `OrderCancelled` for an order that has just ended, in the
/// same unit of work that ended it, and adds it to the timeline.
pub async fn announce_end(
    uow: &mut UnitOfWork,
    order: &OrderRow,
    caused_by: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    let event = match (order.status(), order.cancellation_reason()) {
        (OrderStatus::Completed, _) => Event::OrderConfirmed(OrderConfirmed {
            order_id: order.id,
            customer_id: order.customer_id.clone(),
            total_amount: order.total(),
        }),
        (OrderStatus::Cancelled, Some(reason)) => Event::OrderCancelled(OrderCancelled {
            order_id: order.id,
            customer_id: order.customer_id.clone(),
            reason,
            items: order.items.0.clone(),
        }),
        _ => return Ok(()),
    };
    tracing::info!(
        order_id = %order.id,
        status = order.status().as_str(),
        reason = order.cancellation_reason().map(CancellationReason::as_str),
        "order {}",
        order.status().as_str()
    );
    let envelope = uow.publish(event, caused_by).await?;
    repo::record_event(uow.conn(), &envelope, Service::Order.name()).await
}
