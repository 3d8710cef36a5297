//! One step of a refund that is due: a cancelled order's charge given back under the
//! order's one refund key; the answer then goes to the recorder ([`super::record`]).

use super::record::Said;
use super::{PaymentWorker, StepResult};
use crate::breaker::Permit;
use crate::payments::PaymentRow;
use crate::provider::{RefundRequest, refund_key};
use uuid::Uuid;

impl PaymentWorker {
    /// Gives back a cancelled order's charge, under the order's one refund key, on the
    /// breaker's leave ([`Self::permit`]).
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
        let said = Said::Refund {
            key: request.key,
            answer,
        };
        self.answered(order_id, lease, said).await
    }
}
