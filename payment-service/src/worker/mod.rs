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
//! - this module: the loop that claims due rows and runs a step for each;
//! - `charge`: one step of a payment; `refund`: one step of a refund;
//! - `record`: the answers, written in groups;
//! - `wake`: the `NOTIFY` listener that rings the loop's bell.

mod charge;
mod record;
mod refund;
mod wake;

use crate::breaker::{Breaker, Gate, PROBE_WAIT, Permit};
use crate::payments::{self, PaymentRow, PaymentStatus};
use crate::provider::Provider;
use common::store::Store;
use common::text_enum::TextEnum;
use common::trace::TraceHeaders;
use record::{Recorder, Rules};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
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

/// Tells the loop when a row is due again (a declined attempt's backoff, an unknown
/// outcome's next try), so it wakes for it without asking the database. The worker's own
/// steps use it, and so does the consumer when it declines a first attempt in its
/// transaction; cheap to clone.
#[derive(Clone, Default)]
pub struct WorkerWake {
    soonest: Arc<Mutex<Option<Instant>>>,
    bell: Arc<Notify>,
}

impl WorkerWake {
    /// A row is due again after `delay`: the loop, if it waits longer, looks again now and
    /// then waits until then at most. Early is harmless (a look that finds nothing).
    pub fn due_after(&self, delay: Duration) {
        let at = Instant::now() + delay;
        {
            let mut soonest = self.soonest.lock().unwrap_or_else(|p| p.into_inner());
            *soonest = Some(soonest.map_or(at, |known| known.min(at)));
        }
        self.bell.notify_one();
    }
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
    /// closed breaker, a call slot). Without them the payment is left due for the loop.
    pub fn start_now(&self) -> Option<StartNow> {
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

    /// Works until `stop`; in-flight provider calls finish (each bounded by its timeout).
    /// Rows are claimed as calls free up, so one slow provider call holds back no other.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let this = self;
        let bell = this.wake.bell.clone();
        let listener = tokio::spawn(wake::listen(this.store.clone(), bell.clone(), stop.clone()));
        tracing::info!(provider = %this.provider.describe(), "payment worker started");
        this.log_unfinished().await;
        let slots = this.slots.clone();
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
            // What the breaker lets out: as many rows as there are free slots, the one row
            // of the probe, or none for a while (the rows stay due, their attempts unused).
            let (limit, probe) = match this.breaker.gate() {
                (Gate::Pass, _) => (free, None),
                (Gate::Probe, probe) => (1, probe),
                (Gate::Wait(wait), _) => {
                    tokio::select! {
                        _ = bell.notified() => {}
                        _ = tokio::time::sleep(wait.unwrap_or(PROBE_WAIT)) => {}
                        _ = stop.cancelled() => {}
                    }
                    continue;
                }
            };
            let claimed = payments::claim_due(this.store.pool(), limit as i64, this.lease).await;
            let wait = match claimed {
                Ok(rows) if rows.len() >= limit && probe.is_none() => {
                    this.spawn_steps(rows, None);
                    continue;
                }
                Ok(rows) => {
                    // Nothing more is due now. A probe that found no row is given back as
                    // the permit drops. Rows due later from this worker's steps wake it on
                    // time; other replicas' (and rows whose worker died) within a POLL.
                    this.spawn_steps(rows, probe);
                    this.until_soonest().min(POLL)
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
        this.in_flight.close();
        this.in_flight.wait().await;
        let _ = listener.await;
        tracing::info!("payment worker stopped");
    }

    /// Works each claimed row in its own task, the first on the breaker's `probe` if there
    /// is one.
    fn spawn_steps(self: &Arc<Self>, rows: Vec<PaymentRow>, mut probe: Option<Permit>) {
        for row in rows {
            let permit = probe.take();
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                // Claims never exceed the free slots; should one, the row is due again when
                // its lease ends. (Releasing it would make it due never: `release` is for
                // rows with nothing left to do.)
                tracing::warn!(order_id = %row.order_id, "claimed a payment with no free slot; it is taken up again after its lease");
                continue;
            };
            self.spawn_step(row, permit, slot);
        }
    }

    /// Works one row in its own task on `slot`, with `permit` if the breaker's leave was
    /// taken already; a step that leaves its row due again soon (a declined attempt's
    /// backoff) or that was the probe (the breaker closed, or opened again) rings the bell.
    fn spawn_step(
        self: &Arc<Self>,
        row: PaymentRow,
        permit: Option<Permit>,
        slot: OwnedSemaphorePermit,
    ) {
        let this = self.clone();
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
        self.in_flight.spawn(
            async move {
                let was_probe = permit.as_ref().is_some_and(Permit::is_probe);
                let left = this.step(row, permit).await.unwrap_or_else(|error| {
                    tracing::warn!(%error, "payment step failed; it is taken up again after its lease");
                    Left::Nothing
                });
                drop(slot);
                // A loop that stopped claiming for want of a slot waits for this one; one
                // that waits for the probe looks at the breaker again.
                if let Left::Later(delay) = left {
                    this.wake.due_after(delay);
                }
                if left != Left::Nothing
                    || was_probe
                    || this.slots.available_permits() == 1
                {
                    this.wake.bell.notify_one();
                }
            }
            .instrument(span),
        );
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

    /// How long until the soonest row this worker left for later is due (forgetting it
    /// once it is).
    fn until_soonest(&self) -> Duration {
        let mut soonest = self.wake.soonest.lock().unwrap_or_else(|p| p.into_inner());
        match *soonest {
            Some(at) if at > Instant::now() => at - Instant::now(),
            Some(_) => {
                *soonest = None;
                Duration::ZERO
            }
            None => POLL,
        }
    }

    /// Lets go of a row with nothing left to do: it is not due again.
    async fn release(&self, order_id: Uuid, lease: Uuid) -> StepResult {
        payments::release(self.store.pool(), order_id, lease).await?;
        Ok(Left::Nothing)
    }

    /// The breaker's leave for this step's one provider call: the one taken already (the
    /// probe's, or a started first attempt's), else one from a closed breaker.
    fn permit(&self, probe: Option<Permit>) -> Option<Permit> {
        probe.or_else(|| self.breaker.let_through())
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
