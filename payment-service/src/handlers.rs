//! `InventoryReserved` → charge, retrying with backoff; `OrderCancelled` → refund a charge
//! already made, stop one in progress, or leave a tombstone so a late reservation is never
//! charged.
//!
//! Each attempt is its own transaction that records the attempt count, so a crash between
//! attempts resumes the same payment at the next attempt, and a waiting retry holds no
//! database connection. The consumer handles deliveries concurrently, so one order's
//! backoff never stalls another's.

use crate::gateway::Gateway;
use crate::payments::{self, PaymentStatus};
use common::amqp::consumer::{HandlerError, MessageHandler};
use common::events::{
    Envelope, Event, InventoryReserved, OrderCancelled, PaymentFailed, PaymentProcessed,
    PaymentRefunded,
};
use common::retry::Backoff;
use common::store::Store;
use std::time::Duration;

pub struct PaymentHandler {
    pub store: Store,
    pub gateway: Gateway,
    pub max_attempts: u32,
    pub retry_base: Duration,
}

impl MessageHandler for PaymentHandler {
    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError> {
        match &message.event {
            Event::InventoryReserved(reserved) => self.charge(message, reserved).await,
            Event::OrderCancelled(cancelled) => self.cancel(message, cancelled).await,
            _ => {
                tracing::debug!("not an event payment-service acts on; ignored");
                Ok(())
            }
        }
    }
}

/// What one attempt decided.
enum Step {
    Done,
    RetryAfter(Duration),
}

impl PaymentHandler {
    async fn charge(
        &self,
        message: &Envelope,
        reserved: &InventoryReserved,
    ) -> Result<(), HandlerError> {
        // Resuming after a restart: keep the backoff that was due before the next attempt.
        if let Some(payment) = payments::find(self.store.pool(), reserved.order_id).await?
            && payment.status() == PaymentStatus::Pending
            && payment.attempts() > 0
        {
            let delay = Backoff::nth_delay(self.retry_base, payment.attempts());
            tracing::info!(attempts = payment.attempts(), retry_in = ?delay, "resuming an interrupted payment");
            tokio::time::sleep(delay).await;
        }
        loop {
            match self.attempt(message, reserved).await? {
                Step::Done => return Ok(()),
                Step::RetryAfter(delay) => tokio::time::sleep(delay).await,
            }
        }
    }

    /// One attempt, in one transaction.
    async fn attempt(
        &self,
        message: &Envelope,
        reserved: &InventoryReserved,
    ) -> Result<Step, HandlerError> {
        let order_id = reserved.order_id;
        let mut uow = self.store.begin().await?;
        payments::lock_order(uow.conn(), order_id).await?;
        if payments::is_cancelled(uow.conn(), order_id).await? {
            uow.claim(message).await?;
            uow.commit().await?;
            tracing::info!("order already cancelled; not charging");
            return Ok(Step::Done);
        }
        let payment = payments::get_or_start(uow.conn(), order_id, reserved.total_amount).await?;
        if payment.status() != PaymentStatus::Pending {
            uow.claim(message).await?;
            uow.commit().await?;
            tracing::info!(
                status = payment.status().as_str(),
                "payment already settled; not charging again"
            );
            return Ok(Step::Done);
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
            uow.publish(processed, Some(message.event_id)).await?;
            uow.claim(message).await?;
            uow.commit().await?;
            tracing::info!(attempt, amount = %payment.amount(), payment_id = %payment.payment_id, "payment processed");
            return Ok(Step::Done);
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
            uow.publish(failed, Some(message.event_id)).await?;
            uow.claim(message).await?;
            uow.commit().await?;
            tracing::info!(attempt, %reason, "payment failed");
            return Ok(Step::Done);
        }
        payments::record(
            uow.conn(),
            order_id,
            attempt,
            PaymentStatus::Pending,
            Some("declined"),
        )
        .await?;
        uow.commit().await?;
        let delay = Backoff::nth_delay(self.retry_base, attempt);
        tracing::info!(attempt, max_attempts = self.max_attempts, retry_in = ?delay, "payment declined; will retry");
        Ok(Step::RetryAfter(delay))
    }

    async fn cancel(
        &self,
        message: &Envelope,
        cancelled: &OrderCancelled,
    ) -> Result<(), HandlerError> {
        let order_id = cancelled.order_id;
        let mut uow = self.store.begin().await?;
        if !uow.claim(message).await? {
            tracing::info!("already handled; skipped");
            return Ok(());
        }
        payments::lock_order(uow.conn(), order_id).await?;
        payments::mark_cancelled(uow.conn(), order_id).await?;
        let refunded = payments::transition(
            uow.conn(),
            order_id,
            PaymentStatus::Processed,
            PaymentStatus::Refunded,
            "order cancelled after payment",
        )
        .await?;
        if let Some(payment) = refunded {
            let event = Event::PaymentRefunded(PaymentRefunded {
                order_id,
                payment_id: payment.payment_id,
                amount: payment.amount(),
            });
            uow.publish(event, Some(message.event_id)).await?;
            tracing::info!(amount = %payment.amount(), reason = cancelled.reason.as_str(), "payment refunded");
        } else if payments::transition(
            uow.conn(),
            order_id,
            PaymentStatus::Pending,
            PaymentStatus::Failed,
            "order cancelled while payment was being retried",
        )
        .await?
        .is_some()
        {
            tracing::info!("order cancelled mid-payment; retries stopped");
        } else {
            tracing::info!("no payment to refund");
        }
        uow.commit().await?;
        Ok(())
    }
}
