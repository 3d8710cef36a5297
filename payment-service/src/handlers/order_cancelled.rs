//! `OrderCancelled` → stop the payment, let an attempt in flight finish (a success is then
//! refunded), or leave a tombstone so a late reservation is never charged.

use super::PaymentHandler;
use crate::payments::{self, PaymentStatus};
use common::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use common::text_enum::TextEnum;
use contract::Event;
use contract::events::OrderCancelled;
use uuid::Uuid;

impl Handle<OrderCancelled> for PaymentHandler {
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %cancelled.order_id))]
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        cancelled: &OrderCancelled,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        cancel(uow, cancelled, message.envelope.event_id).await?;
        Ok(Handled::Done)
    }
}

async fn cancel(
    uow: &mut UnitOfWork,
    cancelled: &OrderCancelled,
    cause: Uuid,
) -> Result<(), sqlx::Error> {
    let order_id = cancelled.order_id;
    let payment = payments::void(uow.conn(), order_id, cause).await?;
    match payment.status {
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
            status = payment.status.as_str(),
            "cancellation already handled or nothing to refund"
        ),
    }
    Ok(())
}
