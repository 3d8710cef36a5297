//! `OrderCreated` → reserve every item or none, and answer `InventoryReserved` or
//! `InventoryUnavailable` (with the short items).

use super::InventoryHandler;
use crate::stock::{self, OrderRef, Reservation};
use chrono::{SubsecRound, Utc};
use common::consumer::{Handle, Handled, HandlerError, Incoming};
use common::event::Envelope;
use common::store::UnitOfWork;
use common::text_enum::TextEnum;
use contract::events::{Event, InventoryReserved, InventoryUnavailable, OrderCreated};
use contract::reads::ReservedEvent;
use uuid::Uuid;

impl Handle<OrderCreated> for InventoryHandler {
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %order.order_id))]
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        order: &OrderCreated,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        let cause = message.envelope.event_id;
        // The answer's id and time are chosen first: the reservation records them (for the
        // saga view) in the statement that claims the order.
        let announced = ReservedEvent {
            event_id: Uuid::now_v7(),
            causation_id: Some(cause),
            // As the event's JSON will say it: to the microsecond.
            occurred_at: Utc::now().trunc_subsecs(6).into(),
        };
        if let Some(reply) = reserve(uow.conn(), order, &announced).await? {
            let envelope = Envelope {
                event_id: announced.event_id,
                event: reply,
                timestamp: announced.occurred_at.to_utc(),
            };
            uow.publish_envelope(envelope, Some(cause));
        }
        Ok(Handled::Done)
    }
}

/// Reserves the order's stock and returns the event that answers it, if any.
async fn reserve(
    conn: &mut sqlx::PgConnection,
    order: &OrderCreated,
    announced: &ReservedEvent,
) -> Result<Option<Event>, sqlx::Error> {
    let needs = stock::needs(&order.items);
    let owner = OrderRef {
        order_id: order.order_id,
        customer_id: &order.customer_id,
    };
    let reservation = stock::reserve(conn, owner, &needs, announced).await?;
    Ok(match reservation {
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
            tracing::info!(
                status = status.as_str(),
                "order already seen here; nothing to reserve"
            );
            None
        }
    })
}
