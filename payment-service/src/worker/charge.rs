//! One step of a payment that is due: the current attempt asked again (its outcome was
//! unknown) or the next one, which the claim started and committed; the answer then goes
//! to the recorder ([`super::record`]).

use super::record::Said;
use super::{Left, PaymentWorker, StepResult};
use crate::breaker::Permit;
use crate::payments::{self, PaymentRow};
use crate::provider::{ChargeRequest, charge_key};
use uuid::Uuid;

impl PaymentWorker {
    /// One try of the attempt the claim started, or again of one whose outcome is unknown,
    /// on the breaker's leave ([`Self::permit`]).
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
        let said = Said::Charge {
            attempt,
            key: request.key,
            answer,
        };
        self.answered(order_id, lease, said).await
    }
}
