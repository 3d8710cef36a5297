//! The payment worker: takes due payment rows and asks the provider, outside any
//! transaction and without holding a consumer slot.
//!
//! For each row it goes: claim it, which commits its next attempt (number and key) →
//! ask the provider → in one transaction, record the answer and the event it causes in
//! the outbox.
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
//!
//! # Layout
//! - this module: the loop that claims due rows and runs a step for each;
//! - `charge`: one step of a payment; `refund`: one step of a refund;
//! - `wake`: the `NOTIFY` listener that rings the loop's bell.

mod charge;
mod refund;
mod wake;

use crate::payments::{self, PaymentRow, PaymentStatus};
use crate::provider::{Provider, Unknown};
use common::retry::Backoff;
use common::store::{Store, UnitOfWork};
use common::text_enum::TextEnum;
use common::trace::TraceHeaders;
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
    /// Due again soon: a retry after its backoff, a refund.
    Due,
}

impl PaymentWorker {
    /// Works until `stop`; in-flight provider calls finish (each bounded by its timeout).
    /// Rows are claimed as calls free up, so one slow provider call holds back no other.
    pub async fn run(self, stop: CancellationToken) {
        let this = Arc::new(self);
        let bell = Arc::new(Notify::new());
        let listener = tokio::spawn(wake::listen(this.store.clone(), bell.clone(), stop.clone()));
        tracing::info!(provider = %this.provider.describe(), "payment worker started");
        this.log_unfinished().await;
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let in_flight = TaskTracker::new();
        while !stop.is_cancelled() {
            let free = slots.available_permits().min(CLAIM_BATCH);
            if free == 0 {
                // Every slot is busy: the step that frees one rings the bell. Asking the
                // database meanwhile would only spin.
                tokio::select! {
                    _ = bell.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stop.cancelled() => {}
                }
                continue;
            }
            let claimed =
                payments::claim_due(this.store.pool(), free as i64, this.policy.lease).await;
            let wait = match claimed {
                Ok(rows) if rows.len() >= free => {
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
                // Claims never exceed the free slots; should one, the row is due again when
                // its lease ends. (Releasing it would make it due never: `release` is for
                // rows with nothing left to do.)
                tracing::warn!(order_id = %row.order_id, "claimed a payment with no free slot; it is taken up again after its lease");
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

    /// Lets go of a row with nothing left to do: it is not due again.
    async fn release(&self, order_id: Uuid, lease: Uuid) -> StepResult {
        payments::release(self.store.pool(), order_id, lease).await?;
        Ok(Left::Nothing)
    }

    /// Records that the outcome of the call under `key` (a charge attempt or the refund)
    /// is unknown: the same key is asked again after a backoff that grows with each try.
    async fn ask_again_later(
        &self,
        mut uow: UnitOfWork,
        now: &PaymentRow,
        unknown: &Unknown,
        key: &str,
    ) -> StepResult {
        let retry_in = self.unknown_delay(now);
        if unknown.client_bug {
            tracing::error!(reason = %unknown.reason, %key, ?retry_in, "the provider refused our request: a bug to look into; asking again with the same key, never a new one");
        } else {
            tracing::warn!(reason = %unknown.reason, %key, ?retry_in, "outcome unknown; will ask again with the same key");
        }
        payments::unknown(uow.conn(), now.order_id, &unknown.reason, retry_in).await?;
        uow.commit().await?;
        Ok(Left::Due)
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
