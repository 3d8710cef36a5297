//! `InventoryReserved` → the order is to be paid: a payment row the worker picks up.

use super::PaymentHandler;
use crate::payments::{self, PaymentStatus};
use common::amqp::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use common::text_enum::TextEnum;
use common::trace::TraceHeaders;
use contract::Event;
use contract::events::InventoryReserved;
use uuid::Uuid;

impl Handle<InventoryReserved> for PaymentHandler {
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        reserved: &InventoryReserved,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        want_payment(uow, reserved, message.envelope.event_id).await?;
        Ok(Handled::Done)
    }
}

async fn want_payment(
    uow: &mut UnitOfWork,
    reserved: &InventoryReserved,
    cause: Uuid,
) -> Result<(), sqlx::Error> {
    let amount = reserved.total_amount;
    // Handled inside the message's span: the payment's steps continue its trace.
    let trace = TraceHeaders::of(&tracing::Span::current());
    match payments::want(uow.conn(), reserved.order_id, amount, cause, &trace).await? {
        None => tracing::info!(%amount, "payment wanted; the payment worker charges it"),
        Some(row) if row.status == PaymentStatus::Void => {
            tracing::info!("order already cancelled; not charging")
        }
        Some(row) => tracing::info!(
            status = row.status.as_str(),
            "payment already recorded; nothing more to start"
        ),
    }
    Ok(())
}
