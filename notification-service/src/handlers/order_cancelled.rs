//! `OrderCancelled` → the customer is told why, and whether a refund follows: it does when
//! the customer was told of a payment (`PaymentProcessed`, recorded here first); a charge
//! still in flight at the cancellation is refunded too, and `PaymentRefunded` says so.

use super::{NotificationHandler, notify};
use common::consumer::{Handle, Handled, HandlerError, Incoming};
use common::store::UnitOfWork;
use contract::Event;
use contract::events::{CancellationReason, OrderCancelled};

impl Handle<OrderCancelled> for NotificationHandler {
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %e.order_id))]
    async fn handle(
        &self,
        uow: &mut UnitOfWork,
        e: &OrderCancelled,
        message: &Incoming<Event>,
    ) -> Result<Handled, HandlerError> {
        let paid: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM notifications
                            WHERE order_id = $1 AND event_type = 'PaymentProcessed')",
        )
        .bind(e.order_id)
        .fetch_one(uow.conn())
        .await?;
        let refund = if paid {
            " Your payment will be refunded."
        } else if e.reason.requested() {
            " No payment was taken; a charge still in progress will be refunded."
        } else {
            ""
        };
        let text = format!(
            "Order {} for {} was cancelled: {}.{refund}",
            e.order_id,
            e.customer_id,
            why(e.reason)
        );
        notify(uow, &message.envelope, text).await
    }
}

fn why(reason: CancellationReason) -> &'static str {
    match reason {
        CancellationReason::InventoryUnavailable => "some items are out of stock",
        CancellationReason::PaymentFailed => "the payment did not go through",
        CancellationReason::Timeout => "it took too long to process",
        CancellationReason::CustomerCancelled => "you cancelled it",
        CancellationReason::OperatorCancelled => "our support team cancelled it",
    }
}
