//! One step of a payment that is due: the current attempt asked again (its outcome was
//! unknown) or the next one, which the claim started and committed; then the provider's
//! answer and the event it causes recorded in one transaction — if this worker still holds
//! the row.

use super::{Left, PaymentWorker, StepResult};
use crate::breaker::Permit;
use crate::payments::{self, PaymentRow, PaymentStatus};
use crate::provider::{ChargeAnswer, ChargeRequest, charge_key};
use common::events::{Event, PaymentFailed, PaymentProcessed};
use common::retry::Backoff;
use uuid::Uuid;

impl PaymentWorker {
    /// One try of the attempt the claim started, or again of one whose outcome is unknown,
    /// on the breaker's leave (`probe`, if the row was claimed for the probe).
    pub(super) async fn charge(
        &self,
        row: PaymentRow,
        lease: Uuid,
        probe: Option<Permit>,
    ) -> StepResult {
        let order_id = row.order_id;
        if row.cancel_requested && !row.attempt_open {
            let mut conn = self.store.pool().acquire().await?;
            payments::fail(&mut conn, order_id, "order cancelled between attempts").await?;
            return Ok(Left::Nothing);
        }
        let Some(permit) = self.permit(probe) else {
            return self.wait_for_breaker(&row, lease).await;
        };
        let attempt = row.attempts();
        let key = row
            .attempt_key
            .clone()
            .unwrap_or_else(|| charge_key(order_id, attempt));
        if !row.attempt_started {
            tracing::info!(attempt, %key, "asking the provider again about an attempt whose outcome is unknown");
        }
        let request = ChargeRequest {
            key,
            order_id,
            amount: row.amount(),
        };
        let answer = self.provider.charge(&request, permit).await;

        let mut uow = self.store.begin().await?;
        let Some(now) = payments::lock_leased(uow.conn(), order_id, lease).await? else {
            tracing::info!(
                attempt,
                "lease lost meanwhile; another worker finishes this attempt"
            );
            return Ok(Left::Nothing);
        };
        let still_this_attempt =
            now.status == PaymentStatus::Pending && now.attempt_open && now.attempts() == attempt;
        if !still_this_attempt {
            return Ok(Left::Nothing);
        }
        let amount = now.amount();
        match answer {
            ChargeAnswer::Succeeded { charge_id } => {
                payments::processed(uow.conn(), order_id, &charge_id).await?;
                let processed = Event::PaymentProcessed(PaymentProcessed {
                    order_id,
                    payment_id: now.payment_id,
                    amount,
                    attempts: attempt,
                });
                uow.publish(processed, now.reserved_event_id);
                uow.commit().await?;
                tracing::info!(attempt, %amount, %charge_id, payment_id = %now.payment_id, "payment processed");
                if now.cancel_requested {
                    tracing::info!("the order was cancelled meanwhile; refund due");
                    return Ok(Left::Due);
                }
                Ok(Left::Nothing)
            }
            ChargeAnswer::Declined { reason } if now.cancel_requested => {
                let note = format!("attempt {attempt} declined ({reason}); order cancelled");
                payments::fail(uow.conn(), order_id, &note).await?;
                uow.commit().await?;
                tracing::info!(attempt, %reason, "payment declined and the order is cancelled; nothing charged");
                Ok(Left::Nothing)
            }
            ChargeAnswer::Declined { reason } if attempt >= self.policy.max_attempts => {
                let failure = format!("Payment declined {attempt} times");
                payments::fail(uow.conn(), order_id, &failure).await?;
                let failed = Event::PaymentFailed(PaymentFailed {
                    order_id,
                    amount,
                    reason: failure.clone(),
                    attempts: attempt,
                });
                uow.publish(failed, now.reserved_event_id);
                uow.commit().await?;
                tracing::info!(attempt, last_reason = %reason, reason = %failure, "payment failed");
                Ok(Left::Nothing)
            }
            ChargeAnswer::Declined { reason } => {
                let delay = Backoff::nth_delay(self.policy.retry_base, attempt);
                payments::declined(uow.conn(), order_id, &format!("declined: {reason}"), delay)
                    .await?;
                uow.commit().await?;
                tracing::info!(attempt, max_attempts = self.policy.max_attempts, retry_in = ?delay, %reason, "payment declined; will retry");
                Ok(Left::Due)
            }
            ChargeAnswer::Unknown(unknown) => {
                self.ask_again_later(uow, &now, &unknown, &request.key)
                    .await
            }
        }
    }
}
