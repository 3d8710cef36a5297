//! One step of a refund that is due: a cancelled order's charge given back under the
//! order's one refund key, and `PaymentRefunded` recorded — if this worker still holds
//! the row.

use super::{Left, PaymentWorker, StepResult};
use crate::breaker::Permit;
use crate::payments::{self, PaymentRow};
use crate::provider::{RefundAnswer, RefundRequest, refund_key};
use common::events::{Event, PaymentRefunded};
use uuid::Uuid;

impl PaymentWorker {
    /// Gives back a cancelled order's charge, under the order's one refund key, on the
    /// breaker's leave (`probe`, if the row was claimed for the probe).
    pub(super) async fn refund(
        &self,
        row: PaymentRow,
        lease: Uuid,
        probe: Option<Permit>,
    ) -> StepResult {
        let order_id = row.order_id;
        let Some(charge_id) = row.charge_id.clone() else {
            tracing::error!("a processed payment without a charge id cannot be refunded");
            return self.release(order_id, lease).await;
        };
        let Some(permit) = self.permit(probe) else {
            return self.wait_for_breaker(&row, lease).await;
        };
        let request = RefundRequest {
            key: refund_key(order_id),
            charge_id,
            amount: row.amount(),
        };
        let answer = self.provider.refund(&request, permit).await;

        let mut uow = self.store.begin().await?;
        let Some(now) = payments::lock_leased(uow.conn(), order_id, lease).await? else {
            return Ok(Left::Nothing);
        };
        if !(now.refund_due() && now.refund_id.is_none()) {
            return Ok(Left::Nothing);
        }
        match answer {
            RefundAnswer::Succeeded { refund_id } => {
                payments::refunded(uow.conn(), order_id, &refund_id).await?;
                let event = Event::PaymentRefunded(PaymentRefunded {
                    order_id,
                    payment_id: now.payment_id,
                    amount: now.amount(),
                });
                uow.publish(event, now.cancel_event_id);
                uow.commit().await?;
                tracing::info!(amount = %now.amount(), %refund_id, "payment refunded");
                Ok(Left::Nothing)
            }
            RefundAnswer::Unknown(unknown) => {
                self.ask_again_later(uow, &now, &unknown, &request.key)
                    .await
            }
        }
    }
}
