//! `OrderCreated` → reserve all or nothing; `OrderCancelled` → release what the order holds.

use crate::stock::{self, Release, Reservation};
use common::amqp::consumer::{Handled, HandlerError, Incoming, MessageHandler};
use common::events::{
    Event, InventoryReserved, InventoryUnavailable, OrderCancelled, OrderCreated,
};
use common::store::UnitOfWork;

pub struct InventoryHandler;

impl MessageHandler for InventoryHandler {
    async fn apply(
        &self,
        uow: &mut UnitOfWork,
        message: &Incoming,
    ) -> Result<Handled, HandlerError> {
        let message = &message.envelope;
        match &message.event {
            Event::OrderCreated(order) => {
                if let Some(reply) = reserve(uow.conn(), order).await? {
                    uow.publish(reply, Some(message.event_id));
                }
            }
            Event::OrderCancelled(cancelled) => release(uow.conn(), cancelled).await?,
            _ => tracing::debug!("not an event inventory-service acts on; ignored"),
        }
        Ok(Handled::Done)
    }

    /// Locks every product the batch touches, in product order, before any message runs.
    /// A lone message needs no such step: it locks its own products in order.
    async fn prepare(
        &self,
        uow: &mut UnitOfWork,
        messages: &[&Incoming],
    ) -> Result<(), HandlerError> {
        if messages.len() < 2 {
            return Ok(());
        }
        let items = messages.iter().flat_map(|m| match &m.envelope.event {
            Event::OrderCreated(order) => order.items.as_slice(),
            Event::OrderCancelled(cancelled) => cancelled.items.as_slice(),
            _ => &[],
        });
        let products: Vec<&str> = items.map(|item| item.product_id.as_str()).collect();
        stock::lock_products_in_order(uow.conn(), &products).await?;
        Ok(())
    }
}

/// Reserves the order's stock and returns the event that answers it, if any.
async fn reserve(
    conn: &mut sqlx::PgConnection,
    order: &OrderCreated,
) -> Result<Option<Event>, sqlx::Error> {
    let needs = stock::needs(&order.items);
    Ok(match stock::reserve(conn, order.order_id, &needs).await? {
        Reservation::Reserved => {
            tracing::info!(items = ?needs, "reserved stock");
            Some(Event::InventoryReserved(InventoryReserved {
                order_id: order.order_id,
                customer_id: order.customer_id.clone(),
                items: order.items.clone(),
                total_amount: order.total_amount,
            }))
        }
        Reservation::Unavailable(short) => {
            let reason = short
                .iter()
                .map(|item| {
                    format!(
                        "{}: requested {}, available {}",
                        item.product_id, item.requested, item.available
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let reason = format!("Insufficient stock ({reason})");
            tracing::info!(%reason, "stock unavailable; nothing reserved");
            Some(Event::InventoryUnavailable(InventoryUnavailable {
                order_id: order.order_id,
                reason,
                items: short,
            }))
        }
        Reservation::AlreadySeen { status } => {
            tracing::info!(%status, "order already seen here; nothing to reserve");
            None
        }
    })
}

async fn release(
    conn: &mut sqlx::PgConnection,
    cancelled: &OrderCancelled,
) -> Result<(), sqlx::Error> {
    match stock::release(conn, cancelled.order_id).await? {
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
