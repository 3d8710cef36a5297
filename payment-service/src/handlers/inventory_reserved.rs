//! `InventoryReserved` → the order is to be paid: with an HTTP provider, a payment row whose
//! first attempt this replica asks for right after the commit (or the worker picks up);
//! with the built-in simulator, its first attempt charged here.

use super::PaymentHandler;
use crate::payments::{self, FirstAttempt, PaymentRow, PaymentStatus, Wanted};
use common::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use common::text_enum::TextEnum;
use common::trace::TraceHeaders;
use contract::events::{Event, InventoryReserved, PaymentFailed, PaymentProcessed};
use uuid::Uuid;

impl Handle<InventoryReserved> for PaymentHandler {
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %reserved.order_id))]
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
        return want_from_provider(handler, uow, reserved, cause, &trace).await;
    };
    let order_id = reserved.order_id;
    let charged =
        payments::charge_first_attempt(uow.conn(), simulator, order_id, amount, cause, &trace)
            .await?;
    let answer = match charged {
        Ok(answer) => answer,
        Err(row) => {
            already(&row);
            return Ok(());
        }
    };
    // Counted and said once the batch commits: one that rolls back charged nothing, and
    // its redelivery asks the simulator afresh.
    let outcome = answer.metric();
    uow.after_commit(move || crate::provider::count_call("charge", outcome));
    match answer {
        FirstAttempt::Processed {
            payment_id,
            charge_id,
        } => {
            let event = Event::PaymentProcessed(PaymentProcessed {
                order_id,
                payment_id,
                amount,
                attempts: 1,
            });
            uow.publish(event, Some(cause));
            uow.after_commit(move || {
                tracing::info!(attempt = 1, %amount, %charge_id, %payment_id, "payment processed");
            });
        }
        FirstAttempt::Declined { retry_in } => {
            let (max_attempts, worker) = (simulator.max_attempts, handler.worker.clone());
            uow.after_commit(move || {
                tracing::info!(
                    attempt = 1,
                    max_attempts,
                    ?retry_in,
                    "payment declined; will retry"
                );
                worker.wake().due_after(retry_in);
            });
        }
        FirstAttempt::Failed { reason } => {
            let event = Event::PaymentFailed(PaymentFailed {
                order_id,
                amount,
                reason: reason.clone(),
                attempts: 1,
            });
            uow.publish(event, Some(cause));
            uow.after_commit(move || tracing::info!(attempt = 1, %reason, "payment failed"));
        }
    }
    Ok(())
}

/// With an HTTP provider: a payment row, its first attempt started if this replica can ask
/// the provider at once (a free call slot, a closed breaker) — asked right after the
/// commit, without waiting for a worker to wake and claim it — else due for the workers.
async fn want_from_provider(
    handler: &PaymentHandler,
    uow: &mut UnitOfWork,
    reserved: &InventoryReserved,
    cause: Uuid,
    trace: &TraceHeaders,
) -> Result<(), sqlx::Error> {
    let amount = reserved.total_amount;
    let ticket = handler.worker.start_now();
    let lease = ticket.as_ref().map(|ticket| ticket.lease);
    let wanted = payments::want(uow.conn(), reserved.order_id, amount, cause, trace, lease).await?;
    match (wanted, ticket) {
        (Wanted::Started(row), Some(ticket)) => {
            tracing::info!(%amount, "payment wanted; asking the provider once this commits");
            let worker = handler.worker.clone();
            uow.after_commit(move || worker.step_now(row, ticket));
        }
        (Wanted::Already(row), _) => already(&row),
        _ => {
            tracing::info!(%amount, "payment wanted; the payment worker charges it");
            let wake = handler.worker.wake();
            uow.after_commit(move || wake.left_due());
        }
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
