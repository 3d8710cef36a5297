//! `InventoryReserved` → charge, retrying with backoff; `OrderCancelled` → refund a charge
//! already made, stop one in progress, or leave a tombstone so a late reservation is never
//! charged.
//!
//! Each attempt commits the attempt count. Between attempts the handler answers
//! [`Handled::RetryAfter`]: the consumer keeps the delivery and applies it again after the
//! backoff, holding no transaction meanwhile and going on with other orders. A crash between
//! attempts therefore resumes the same payment at the next attempt.

use crate::gateway::Gateway;
use crate::payments::{self, PaymentStatus};
use common::amqp::consumer::{Handled, HandlerError, Incoming, MessageHandler};
use common::events::{
    Event, InventoryReserved, OrderCancelled, PaymentFailed, PaymentProcessed, PaymentRefunded,
};
use common::retry::Backoff;
use common::store::UnitOfWork;
use std::time::Duration;

pub struct PaymentHandler {
    pub gateway: Gateway,
    pub max_attempts: u32,
    pub retry_base: Duration,
}

impl MessageHandler for PaymentHandler {
    async fn apply(
        &self,
        uow: &mut UnitOfWork,
        message: &Incoming,
    ) -> Result<Handled, HandlerError> {
        match &message.envelope.event {
            Event::InventoryReserved(reserved) => self.attempt(uow, message, reserved).await,
            Event::OrderCancelled(cancelled) => {
                self.cancel(uow, message, cancelled).await?;
                Ok(Handled::Done)
            }
            _ => {
                tracing::debug!("not an event payment-service acts on; ignored");
                Ok(Handled::Done)
            }
        }
    }
}

impl PaymentHandler {
    /// One payment attempt. A declined attempt that may be retried is recorded and the
    /// consumer is asked to come back after the backoff.
    async fn attempt(
        &self,
        uow: &mut UnitOfWork,
        message: &Incoming,
        reserved: &InventoryReserved,
    ) -> Result<Handled, HandlerError> {
        let order_id = reserved.order_id;
        let payment = payments::start(uow.conn(), order_id, reserved.total_amount).await?;
        match payment.status() {
            PaymentStatus::Pending => {}
            PaymentStatus::Void => {
                tracing::info!("order already cancelled; not charging");
                return Ok(Handled::Done);
            }
            settled => {
                tracing::info!(
                    status = settled.as_str(),
                    "payment already settled; not charging again"
                );
                return Ok(Handled::Done);
            }
        }
        if message.rounds == 0 && payment.attempts() > 0 {
            // Redelivered after a restart: keep the backoff that was due before going on.
            let delay = Backoff::nth_delay(self.retry_base, payment.attempts());
            tracing::info!(attempts = payment.attempts(), retry_in = ?delay, "resuming an interrupted payment");
            return Ok(Handled::RetryAfter(delay));
        }

        let attempt = payment.attempts() + 1;
        if self.gateway.charge(order_id, attempt) {
            payments::record(
                uow.conn(),
                order_id,
                attempt,
                PaymentStatus::Processed,
                None,
            )
            .await?;
            let processed = Event::PaymentProcessed(PaymentProcessed {
                order_id,
                payment_id: payment.payment_id,
                amount: payment.amount(),
                attempts: attempt,
            });
            uow.publish(processed, Some(message.envelope.event_id));
            tracing::info!(attempt, amount = %payment.amount(), payment_id = %payment.payment_id, "payment processed");
            return Ok(Handled::Done);
        }
        if attempt >= self.max_attempts {
            let reason = format!("Payment declined {attempt} times");
            payments::record(
                uow.conn(),
                order_id,
                attempt,
                PaymentStatus::Failed,
                Some(&reason),
            )
            .await?;
            let failed = Event::PaymentFailed(PaymentFailed {
                order_id,
                amount: payment.amount(),
                reason: reason.clone(),
                attempts: attempt,
            });
            uow.publish(failed, Some(message.envelope.event_id));
            tracing::info!(attempt, %reason, "payment failed");
            return Ok(Handled::Done);
        }
        payments::record(
            uow.conn(),
            order_id,
            attempt,
            PaymentStatus::Pending,
            Some("declined"),
        )
        .await?;
        let delay = Backoff::nth_delay(self.retry_base, attempt);
        tracing::info!(attempt, max_attempts = self.max_attempts, retry_in = ?delay, "payment declined; will retry");
        Ok(Handled::RetryAfter(delay))
    }

    async fn cancel(
        &self,
        uow: &mut UnitOfWork,
        message: &Incoming,
        cancelled: &OrderCancelled,
    ) -> Result<(), HandlerError> {
        let order_id = cancelled.order_id;
        let payment = payments::void(uow.conn(), order_id).await?;
        match payment.status() {
            PaymentStatus::Processed => {
                payments::set_status(
                    uow.conn(),
                    order_id,
                    PaymentStatus::Refunded,
                    "order cancelled after payment",
                )
                .await?;
                let event = Event::PaymentRefunded(PaymentRefunded {
                    order_id,
                    payment_id: payment.payment_id,
                    amount: payment.amount(),
                });
                uow.publish(event, Some(message.envelope.event_id));
                tracing::info!(amount = %payment.amount(), reason = cancelled.reason.as_str(), "payment refunded");
            }
            PaymentStatus::Pending => {
                payments::set_status(
                    uow.conn(),
                    order_id,
                    PaymentStatus::Failed,
                    "order cancelled while payment was being retried",
                )
                .await?;
                tracing::info!("order cancelled mid-payment; retries stopped");
            }
            PaymentStatus::Void => {
                tracing::info!(
                    "cancelled before any payment; a late reservation will charge nothing"
                )
            }
            PaymentStatus::Failed | PaymentStatus::Refunded => {
                tracing::info!("no payment to refund")
            }
        }
        Ok(())
    }
}
