//! `InventoryReserved` → the order is to be paid: a payment row the worker picks up, or,
//! with the built-in simulator, its first attempt charged here.

use super::PaymentHandler;
use crate::payments::{self, FirstAttempt, PaymentRow, PaymentStatus};
use common::amqp::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use common::text_enum::TextEnum;
use common::trace::TraceHeaders;
use contract::events::{Event, InventoryReserved, PaymentFailed, PaymentProcessed};
use uuid::Uuid;

impl Handle<InventoryReserved> for PaymentHandler {
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        reserved: &InventoryReserved,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        want_payment(self, uow, reserved, message.envelope.event_id).await?;
        Ok(Handled::Done)
    }
}

async fn want_payment(
    handler: &PaymentHandler,
    uow: &mut UnitOfWork,
    reserved: &InventoryReserved,
    cause: Uuid,
) -> Result<(), sqlx::Error> {
    let amount = reserved.total_amount;
    // Handled inside the message's span: the payment's steps continue its trace.
    let trace = TraceHeaders::of(&tracing::Span::current());
    let Some(simulator) = &handler.inline else {
        return match payments::want(uow.conn(), reserved.order_id, amount, cause, &trace).await? {
            None => {
                tracing::info!(%amount, "payment wanted; the payment worker charges it");
                Ok(())
            }
            Some(row) => {
                already(&row);
                Ok(())
            }
        };
    };
    let order_id = reserved.order_id;
    let charged =
        payments::charge_first_attempt(uow.conn(), simulator, order_id, amount, cause, &trace)
            .await?;
    match charged {
        Ok(FirstAttempt::Processed {
            payment_id,
            charge_id,
        }) => {
            tracing::info!(attempt = 1, %amount, %charge_id, %payment_id, "payment processed");
            let event = Event::PaymentProcessed(PaymentProcessed {
                order_id,
                payment_id,
                amount,
                attempts: 1,
            });
            uow.publish(event, Some(cause));
        }
        Ok(FirstAttempt::Declined { retry_in }) => {
            tracing::info!(
                attempt = 1,
                max_attempts = simulator.max_attempts,
                ?retry_in,
                "payment declined; will retry"
            );
            handler.worker.due_after(retry_in);
        }
        Ok(FirstAttempt::Failed { reason }) => {
            tracing::info!(attempt = 1, %reason, "payment failed");
            let event = Event::PaymentFailed(PaymentFailed {
                order_id,
                amount,
                reason,
                attempts: 1,
            });
            uow.publish(event, Some(cause));
        }
        Err(row) => already(&row),
    }
    Ok(())
}

/// The order had a payment row before this message: nothing to start.
fn already(row: &PaymentRow) {
    if row.status == PaymentStatus::Void {
        tracing::info!("order already cancelled; not charging")
    } else {
        tracing::info!(
            status = row.status.as_str(),
            "payment already recorded; nothing more to start"
        )
    }
}
