//! The payment worker: takes due payment rows and asks the provider, outside any
//! transaction and without holding a consumer slot.
//!
//! For each row it goes: commit the attempt (number and key) → ask the provider →
//! in one transaction, record the answer and the event it causes in the outbox.
//! - succeeded → `PROCESSED` + `PaymentProcessed` (a cancelled order's refund is then due);
//! - declined → the next attempt after the backoff, or `FAILED` + `PaymentFailed` after
//!   `PAYMENT_MAX_ATTEMPTS` (or `FAILED` alone if the order was cancelled meanwhile);
//! - unknown → the same attempt again, same key, after the backoff — never a new attempt
//!   before the outcome is known.
//!
//! Rows are claimed with a lease, so several replicas share the work and a worker that
//! dies mid-call leaves its rows to another once the lease ends. Workers wake on a
//! PostgreSQL `NOTIFY` from the commit that made a row due, on the next due time, and every
//! [`POLL`] in any case.

use crate::payments::{self, DUE_CHANNEL, PaymentRow, PaymentStatus};
use crate::provider::{
    ChargeAnswer, ChargeRequest, Provider, RefundAnswer, RefundRequest, Unknown, charge_key,
    refund_key,
};
use common::events::{Event, PaymentFailed, PaymentProcessed, PaymentRefunded};
use common::retry::Backoff;
use common::store::Store;
use common::text_enum::TextEnum;
use common::trace::TraceHeaders;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use uuid::Uuid;

/// The longest a worker sleeps without looking for due rows.
pub const POLL: Duration = Duration::from_secs(1);
/// Rows claimed at once.
const CLAIM_BATCH: usize = 16;
/// Provider calls in flight at once, per replica.
const MAX_IN_FLIGHT: usize = 64;
/// The longest wait between two tries of an attempt whose outcome is unknown.
const MAX_UNKNOWN_DELAY: Duration = Duration::from_secs(30);

/// The retry rules.
#[derive(Debug, Clone)]
pub struct Policy {
    pub max_attempts: u32,
    pub retry_base: Duration,
    /// How long a claimed row is this worker's: longer than one provider call.
    pub lease: Duration,
}

pub struct PaymentWorker {
    pub store: Store,
    pub provider: Arc<Provider>,
    pub policy: Policy,
}

/// What a step left behind: whether its row may be due again soon, so the loop looks at
/// once, or nothing is due from it (the common case: one look fewer per payment). An error
/// leaves the row due after its lease.
type StepResult = Result<Left, sqlx::Error>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// Finished, or another worker's now: nothing due from this row.
    Nothing,
    /// Due again soon: a retry after its backoff, a refund, a released row.
    Due,
}

impl PaymentWorker {
    /// Works until `stop`; in-flight provider calls finish (each bounded by its timeout).
    /// Rows are claimed as calls free up, so one slow provider call holds back no other.
    pub async fn run(self, stop: CancellationToken) {
        let this = Arc::new(self);
        let bell = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(this.store.clone(), bell.clone(), stop.clone()));
        tracing::info!(provider = %this.provider.describe(), "payment worker started");
        this.log_unfinished().await;
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let in_flight = TaskTracker::new();
        while !stop.is_cancelled() {
            let free = slots.available_permits().min(CLAIM_BATCH);
            let claimed = if free == 0 {
                Ok(Vec::new())
            } else {
                payments::claim_due(this.store.pool(), free as i64, this.policy.lease).await
            };
            let wait = match claimed {
                Ok(rows) if rows.len() == free && free > 0 => {
                    this.spawn_steps(rows, &slots, &in_flight, &bell);
                    continue;
                }
                Ok(rows) => {
                    this.spawn_steps(rows, &slots, &in_flight, &bell);
                    payments::next_due_in(this.store.pool())
                        .await
                        .ok()
                        .flatten()
                        .map_or(POLL, |due| due.min(POLL))
                }
                Err(error) => {
                    tracing::warn!(%error, "payment worker cannot read its rows; trying again");
                    POLL
                }
            };
            tokio::select! {
                _ = bell.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => {}
            }
        }
        in_flight.close();
        in_flight.wait().await;
        let _ = listener.await;
        tracing::info!("payment worker stopped");
    }

    /// Works each claimed row in its own task; a step that leaves its row due again soon (a
    /// declined attempt's backoff) rings `bell`.
    fn spawn_steps(
        self: &Arc<Self>,
        rows: Vec<PaymentRow>,
        slots: &Arc<Semaphore>,
        in_flight: &TaskTracker,
        bell: &Arc<Notify>,
    ) {
        for row in rows {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                // Cannot happen (claims never exceed the free slots); the lease brings the
                // row back in any case.
                continue;
            };
            let (this, bell, slots_left) = (self.clone(), bell.clone(), slots.clone());
            // The step continues the trace of the message that asked for the payment.
            let span = tracing::info_span!(
                "payment",
                order_id = %row.order_id,
                otel.name = "payment step",
            );
            TraceHeaders {
                traceparent: row.traceparent.clone(),
                tracestate: row.tracestate.clone(),
            }
            .continue_in(&span);
            in_flight.spawn(
                async move {
                    let left = this.step(row).await.unwrap_or_else(|error| {
                        tracing::warn!(%error, "payment step failed; it is taken up again after its lease");
                        Left::Nothing
                    });
                    drop(slot);
                    // A loop that stopped claiming for want of a slot waits for this one.
                    if left == Left::Due || slots_left.available_permits() == 1 {
                        bell.notify_one();
                    }
                }
                .instrument(span),
            );
        }
    }

    async fn step(&self, row: PaymentRow) -> StepResult {
        let Some(lease) = row.lease else {
            return Ok(Left::Nothing);
        };
        match row.status {
            PaymentStatus::Pending => self.charge(row, lease).await,
            _ if row.refund_due() && row.refund_id.is_none() => self.refund(row, lease).await,
            _ => self.release(row.order_id, lease).await,
        }
    }

    /// Gives the row back, due at once.
    async fn release(&self, order_id: Uuid, lease: Uuid) -> StepResult {
        payments::release(self.store.pool(), order_id, lease).await?;
        Ok(Left::Due)
    }

    /// One try of the current attempt, or the start of the next one.
    async fn charge(&self, row: PaymentRow, lease: Uuid) -> StepResult {
        let order_id = row.order_id;
        let (attempt, key) = if row.attempt_open {
            let attempt = row.attempts();
            let key = row
                .attempt_key
                .clone()
                .unwrap_or_else(|| charge_key(order_id, attempt));
            tracing::info!(attempt, %key, "asking the provider again about an attempt whose outcome is unknown");
            (attempt, key)
        } else if row.cancel_requested {
            let mut conn = self.store.pool().acquire().await?;
            payments::fail(&mut conn, order_id, "order cancelled between attempts").await?;
            return Ok(Left::Nothing);
        } else {
            match payments::start_attempt(self.store.pool(), order_id, lease).await? {
                Some(started) => started,
                None => return self.release(order_id, lease).await,
            }
        };
        let request = ChargeRequest {
            key,
            order_id,
            amount: row.amount(),
        };
        let answer = self.provider.charge(&request).await;

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
                let delay = self.unknown_delay(&now);
                log_unknown(&unknown, &request.key, delay);
                payments::unknown(uow.conn(), order_id, &unknown.reason, delay).await?;
                uow.commit().await?;
                Ok(Left::Due)
            }
        }
    }

    /// Gives back a cancelled order's charge, under the order's one refund key.
    async fn refund(&self, row: PaymentRow, lease: Uuid) -> StepResult {
        let order_id = row.order_id;
        let Some(charge_id) = row.charge_id.clone() else {
            tracing::error!("a processed payment without a charge id cannot be refunded");
            return self.release(order_id, lease).await;
        };
        let request = RefundRequest {
            key: refund_key(order_id),
            charge_id,
            amount: row.amount(),
        };
        let answer = self.provider.refund(&request).await;

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
                let delay = self.unknown_delay(&now);
                log_unknown(&unknown, &request.key, delay);
                payments::unknown(uow.conn(), order_id, &unknown.reason, delay).await?;
                uow.commit().await?;
                Ok(Left::Due)
            }
        }
    }

    /// The backoff before asking again about an unknown outcome, growing with each try.
    fn unknown_delay(&self, row: &PaymentRow) -> Duration {
        let tries = row.unknown_tries.max(0) as u32 + 1;
        Backoff::nth_delay(self.policy.retry_base, tries).min(MAX_UNKNOWN_DELAY)
    }

    /// Says at start which payments this replica (or another) will go on with.
    async fn log_unfinished(&self) {
        match payments::unfinished(self.store.pool()).await {
            Ok(rows) => {
                for row in rows {
                    tracing::info!(order_id = %row.order_id, status = row.status.as_str(), attempts = row.attempts(), attempt_open = row.attempt_open, "resuming an interrupted payment");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot list unfinished payments"),
        }
    }
}

fn log_unknown(unknown: &Unknown, key: &str, retry_in: Duration) {
    if unknown.client_bug {
        tracing::error!(reason = %unknown.reason, %key, ?retry_in, "the provider refused our request: a bug to look into; asking again with the same key, never a new one");
    } else {
        tracing::warn!(reason = %unknown.reason, %key, ?retry_in, "outcome unknown; will ask again with the same key");
    }
}

/// Rings `bell` on every `NOTIFY` on [`DUE_CHANNEL`] until `stop`. Notifications are only
/// a hint: a lost one costs at most [`POLL`].
async fn listen(store: Store, bell: Arc<Notify>, stop: CancellationToken) {
    let work = async {
        loop {
            let mut listener = match PgListener::connect_with(store.pool()).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::debug!(%error, "cannot listen for due payments yet");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            if let Err(error) = listener.listen(DUE_CHANNEL).await {
                tracing::debug!(%error, "cannot listen for due payments yet");
                tokio::time::sleep(POLL).await;
                continue;
            }
            loop {
                match listener.recv().await {
                    Ok(_) => bell.notify_one(),
                    Err(error) => {
                        tracing::debug!(%error, "lost the due-payment notifications; listening again");
                        tokio::time::sleep(POLL).await;
                        break;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = work => {}
        _ = stop.cancelled() => {}
    }
}
