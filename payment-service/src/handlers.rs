//! What the consumer does, quickly and in the batch's transaction: `InventoryReserved`
//! records that the order is to be paid; `OrderCancelled` stops a payment, lets an attempt
//! in flight finish (a success is then refunded), or leaves a tombstone so a late
//! reservation is never charged. The provider is never called here: the worker
//! ([`crate::worker`]) does that outside any transaction, so a rolled-back batch, a
//! redelivery or a duplicate with a new message id cannot charge or start anything twice.

use crate::payments::{self, PaymentStatus};
use common::amqp::consumer::{Handled, HandlerError, Incoming, MessageHandler};
use common::events::{Event, InventoryReserved, OrderCancelled};
use common::store::UnitOfWork;
use common::trace::TraceHeaders;
use uuid::Uuid;

pub struct PaymentHandler;

impl MessageHandler for PaymentHandler {
    async fn apply(
        &self,
        uow: &mut UnitOfWork,
        message: &Incoming,
    ) -> Result<Handled, HandlerError> {
        let cause = message.envelope.event_id;
        match &message.envelope.event {
            Event::InventoryReserved(reserved) => want_payment(uow, reserved, cause).await?,
            Event::OrderCancelled(cancelled) => cancel(uow, cancelled, cause).await?,
            _ => tracing::debug!("not an event payment-service acts on; ignored"),
        }
        Ok(Handled::Done)
    }

    /// Locks the batch's orders in one fixed order before any row is touched: two batches
    /// such as `[InventoryReserved(X), OrderCancelled(Y)]` and `[InventoryReserved(Y),
    /// OrderCancelled(X)]` would otherwise lock X and Y in opposite orders and deadlock.
    async fn prepare(
        &self,
        uow: &mut UnitOfWork,
        messages: &[&Incoming],
    ) -> Result<(), HandlerError> {
        let mut orders: Vec<Uuid> = messages
            .iter()
            .filter_map(|m| match &m.envelope.event {
                Event::InventoryReserved(e) => Some(e.order_id),
                Event::OrderCancelled(e) => Some(e.order_id),
                _ => None,
            })
            .collect();
        orders.sort();
        orders.dedup();
        if orders.len() > 1 {
            payments::lock_orders(uow.conn(), &orders).await?;
        }
        Ok(())
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
        Some(row) if row.status() == PaymentStatus::Void => {
            tracing::info!("order already cancelled; not charging")
        }
        Some(row) => tracing::info!(
            status = row.status().as_str(),
            "payment already recorded; nothing more to start"
        ),
    }
    Ok(())
}

async fn cancel(
    uow: &mut UnitOfWork,
    cancelled: &OrderCancelled,
    cause: Uuid,
) -> Result<(), sqlx::Error> {
    let order_id = cancelled.order_id;
    let payment = payments::void(uow.conn(), order_id, cause).await?;
    match payment.status() {
        PaymentStatus::Pending if !payment.attempt_open => {
            payments::fail(
                uow.conn(),
                order_id,
                "order cancelled before the payment went through",
            )
            .await?;
            tracing::info!(
                attempts = payment.attempts(),
                "order cancelled between payment attempts; no more attempts"
            );
        }
        PaymentStatus::Pending if !payment.cancel_requested => {
            payments::request_cancel(uow.conn(), order_id, cause, false).await?;
            tracing::info!(
                attempt = payment.attempts(),
                "order cancelled while an attempt is with the provider; a success will be refunded"
            );
        }
        PaymentStatus::Processed if !payment.cancel_requested => {
            payments::request_cancel(uow.conn(), order_id, cause, true).await?;
            tracing::info!(
                reason = cancelled.reason.as_str(),
                "order cancelled after payment; refund due"
            );
        }
        PaymentStatus::Void => {
            tracing::info!("cancelled before any payment; a late reservation will charge nothing")
        }
        _ => tracing::info!(
            status = payment.status().as_str(),
            "cancellation already handled or nothing to refund"
        ),
    }
    Ok(())
}
