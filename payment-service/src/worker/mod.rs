//! The payment worker: takes due payment rows and asks the provider, outside any
//! transaction and without holding a consumer slot.
//!
//! For each row it goes: claim it, which commits its next attempt (number and key) →
//! ask the provider → record the answer and the event it causes in the outbox, in one
//! transaction with whatever other answers are waiting ([`record`]).
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
//! The provider's circuit breaker ([`crate::breaker`]) decides what the loop claims: rows as
//! usual while it is closed, nothing while it is open (a claim starts an attempt, and an
//! attempt is not to be used up by waiting), one row for the probe when it is half-open.
//! A step whose call the breaker refuses after all (it opened since the claim) gives its
//! row back with its attempt and key, due again at once.
//!
//! # Layout
//! - this module: the worker, its slots, and one step of a claimed row;
//! - `claim_loop`: the loop that claims due rows and runs a step for each;
//! - `charge`: one step of a payment; `refund`: one step of a refund;
//! - `record`: the answers, written in groups;
//! - `wake`: the loop's bell and the soonest row due, and the `NOTIFY` listener that
//!   rings the bell.

mod charge;
mod claim_loop;
mod record;
mod refund;
mod wake;

pub use wake::WorkerWake;

use crate::breaker::{Breaker, Permit};
use crate::payments::{self, PaymentRow, PaymentStatus};
use crate::provider::Provider;
use common::store::Store;
use common::text_enum::TextEnum;
use contract::OrderId;
use record::{Recorder, Rules};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// The longest a worker sleeps without looking for due rows.
pub const POLL: Duration = Duration::from_secs(1);
/// Rows claimed at once.
const CLAIM_BATCH: usize = 16;
/// Provider calls in flight at once, per replica.
const MAX_IN_FLIGHT: usize = 64;
/// The longest wait between two tries of an attempt whose outcome is unknown.
pub(super) const MAX_UNKNOWN_DELAY: Duration = Duration::from_secs(30);

/// The retry rules.
#[derive(Debug, Clone)]
pub struct Policy {
    pub max_attempts: u32,
    pub retry_base: Duration,
    /// How long a claimed row is this worker's: longer than one provider call.
    pub lease: Duration,
}

pub struct PaymentWorker {
    store: Store,
    provider: Arc<Provider>,
    /// Every provider call needs its permit.
    breaker: Arc<Breaker>,
    /// Writes the answers, in groups.
    recorder: Recorder,
    /// How long a claimed row is this worker's.
    lease: Duration,
    /// When a row left for later is due next, and the loop's bell (see [`WorkerWake`]).
    wake: WorkerWake,
    /// One per provider call in flight, claimed or started by the consumer ([`Self::start_now`]).
    slots: Arc<Semaphore>,
    in_flight: TaskTracker,
}

/// A free slot and the breaker's leave, taken before the consumer starts a first attempt
/// in its transaction, so the call can be made as soon as it commits
/// ([`PaymentWorker::step_now`]). Dropped unused (a rolled-back batch), both go back.
pub struct StartNow {
    slot: OwnedSemaphorePermit,
    permit: Permit,
    /// How long the started attempt's row is the caller's.
    pub lease: Duration,
}

/// What a step left behind: whether its row is due again now, later, or never, so the loop
/// knows when to look without asking the database. An error leaves the row due after its
/// lease.
type StepResult = Result<Left, sqlx::Error>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// Finished, or another worker's now: nothing due from this row.
    Nothing,
    /// Due again at once: a refund.
    Due,
    /// Due again after this: a retry after its backoff.
    Later(Duration),
}

impl PaymentWorker {
    pub fn new(
        store: Store,
        provider: Arc<Provider>,
        breaker: Arc<Breaker>,
        policy: Policy,
    ) -> Self {
        let rules = Rules {
            max_attempts: policy.max_attempts,
            retry_base: policy.retry_base,
        };
        Self {
            recorder: Recorder::start(store.clone(), rules),
            lease: policy.lease,
            wake: WorkerWake::default(),
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            in_flight: TaskTracker::new(),
            store,
            provider,
            breaker,
        }
    }

    /// A slot and the breaker's leave to ask the provider at once, if both are free (a
    /// closed breaker, a call slot) and no row left due waits for the loop. Without them
    /// the payment is left due for the loop (say so with [`WorkerWake::left_due`]).
    pub fn start_now(&self) -> Option<StartNow> {
        if self.wake.is_behind() {
            return None;
        }
        let slot = self.slots.clone().try_acquire_owned().ok()?;
        let permit = self.breaker.let_through()?;
        Some(StartNow {
            slot,
            permit,
            lease: self.lease,
        })
    }

    /// Asks the provider about `row`, whose first attempt the consumer started and
    /// committed on `ticket`, as the loop would after claiming it.
    pub fn step_now(self: &Arc<Self>, row: PaymentRow, ticket: StartNow) {
        self.spawn_step(row, Some(ticket.permit), ticket.slot);
    }

    /// The handle that tells this worker's loop when a row is due.
    pub fn wake(&self) -> WorkerWake {
        self.wake.clone()
    }

    /// One step of a claimed row; `probe` is the breaker's leave if it was taken already:
    /// the half-open breaker's probe, or a closed breaker's for a row the consumer started.
    async fn step(&self, row: PaymentRow, probe: Option<Permit>) -> StepResult {
        let Some(lease) = row.lease else {
            return Ok(Left::Nothing);
        };
        match row.status {
            PaymentStatus::Pending => self.charge(row, lease, probe).await,
            _ if row.refund_due() && row.refund_id.is_none() => {
                self.refund(row, lease, probe).await
            }
            _ => self.release(row.order_id, lease).await,
        }
    }

    /// Lets go of a row with nothing left to do: it is not due again.
    async fn release(&self, order_id: OrderId, lease: Uuid) -> StepResult {
        payments::release(self.store.pool(), order_id, lease).await?;
        Ok(Left::Nothing)
    }

    /// The breaker's leave for this step's one provider call: the one taken already (the
    /// probe's, or a started first attempt's), else one from a closed breaker.
    fn permit(&self, probe: Option<Permit>) -> Option<Permit> {
        probe.or_else(|| self.breaker.let_through())
    }

    /// Hands what the provider said about `order_id` to the recorder, in this step's span.
    async fn answered(&self, order_id: OrderId, lease: Uuid, said: record::Said) -> StepResult {
        let span = tracing::Span::current();
        let answer = record::Answer {
            order_id,
            lease,
            span,
            said,
        };
        self.recorder.record(answer).await
    }

    /// The breaker opened between the claim and the call: the row goes back as it was —
    /// its open attempt and key kept, nothing asked — due again, for when it closes.
    async fn wait_for_breaker(&self, row: &PaymentRow, lease: Uuid) -> StepResult {
        payments::hand_back(self.store.pool(), row.order_id, lease).await?;
        tracing::info!(
            attempt = row.attempts(),
            key = row.attempt_key.as_deref().unwrap_or_default(),
            "the payment provider's circuit breaker is open; the payment waits with its attempt and key"
        );
        Ok(Left::Nothing)
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
