//! Group commit for new orders. `POST /api/orders` hands its validated order to the
//! intake, which writes whatever orders are waiting — one at low load, dozens under load —
//! in one transaction: one insert for the orders, one for their `OrderCreated` events, one
//! commit. When the queue in front of it is full, or more orders are `PENDING` than the
//! system finishes in the target time of a saga (`MAX_PENDING_ORDERS` at most, CONTRACT §9)
//! and no place frees within 40 ms, the POST answers 503 with `Retry-After` (when a place
//! should be free, at the measured drain rate) instead of piling up work.
//!
//! A 5xx means nothing was created (CONTRACT §9):
//! - a request is *claimed* ([`Budget::commit`]) before it goes into a transaction; one
//!   whose caller is gone, or that the request time limit already answered 503, is never
//!   written. A claimed request is answered by the intake, not cut off by the time limit;
//! - everything before `COMMIT` is bounded by [`WRITE_TIMEOUT`]; failing there is a known
//!   "not written" (503 or, for a fault of one request, its own error);
//! - a `COMMIT` without an answer is *in doubt*: the intake ends that backend and looks the
//!   orders up, and answers what the database says.
//!
//! One failing request does not fail its neighbours: keys are inserted in sorted order (two
//! replicas never wait on each other's keys in opposite orders), deadlocks and
//! serialization failures are retried, and any other error is isolated by writing the
//! batch one request at a time.
//!
//! # Layout
//! - this module: the [`Intake`] handle a POST uses, and load shedding;
//! - [`IntakeError`] (`error`): why an order was not placed, mapped to HTTP by `http::orders`;
//! - `pending`: admission — a place under the bound per request, and the background count
//!   of `PENDING` orders;
//! - `limit`: the bound, adapted to the time sagas take;
//! - `writer`: the task that claims waiting requests, retries and isolates failures;
//! - `batch`: one batch in one transaction;
//! - `in_doubt`: settling a `COMMIT` that got no answer.

mod batch;
mod error;
mod failure;
mod in_doubt;
mod limit;
mod pending;
mod writer;

pub use error::IntakeError;

use crate::domain::NewOrder;
use crate::repo::OrderRow;
use common::http::timeout::Budget;
use common::store::Store;
use pending::Admission;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Orders that may wait for the intake; past this, POSTs are turned away with 503.
const QUEUE_LENGTH: usize = 2048;
/// Everything before `COMMIT` must finish within this, or the batch is given up unwritten.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A `COMMIT` not answered within this is in doubt and gets looked up.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// What happened to a placed order.
pub enum Placed {
    /// Written now.
    Created(OrderRow),
    /// Its idempotency key was used before, with the same body: the order it created.
    Repeated(OrderRow),
}

/// The handle POST handlers use; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    queue: mpsc::Sender<Request>,
    /// Places under `MAX_PENDING_ORDERS`: one is reserved before a request is queued.
    admission: Arc<Admission>,
}

struct Request {
    /// Its place under `MAX_PENDING_ORDERS`, kept if it creates an order (the writer
    /// decides, since it writes even for a caller that went away after its claim).
    place: pending::Place,
    order: NewOrder,
    idempotency_key: Option<String>,
    /// The POST's span: its `OrderCreated` joins the caller's trace.
    span: tracing::Span,
    /// Shared with the request time limit: claimed before the request is written.
    budget: Budget,
    reply: oneshot::Sender<Answer>,
}

type Answer = Result<Placed, IntakeError>;

impl Intake {
    /// Starts the writer (it stops when every handle is dropped) and the counter of
    /// `PENDING` orders (it stops with `stop`).
    /// `max_pending` is `MAX_PENDING_ORDERS`; `target`, the time a saga is to take, makes
    /// the bound adapt under it.
    pub fn start(
        store: Store,
        max_pending: i64,
        target: Option<Duration>,
        stop: CancellationToken,
    ) -> Self {
        let (queue, requests) = mpsc::channel(QUEUE_LENGTH);
        let admission = Admission::new(max_pending, target);
        tokio::spawn(admission.clone().recount(store.clone(), stop));
        tokio::spawn(writer::write_loop(store, requests));
        Self { queue, admission }
    }

    pub async fn place(
        &self,
        order: NewOrder,
        idempotency_key: Option<String>,
        budget: Budget,
    ) -> Answer {
        let waited = self.admission.reserve_within(pending::ADMISSION_WAIT).await;
        let place = waited.map_err(|refused| {
            metrics::counter!("intake_shed_total").increment(1);
            IntakeError::Busy {
                why: format!(
                    "{} orders are waiting to finish, as many as the system finishes in time \
                     now ({} of MAX_PENDING_ORDERS {}); retry after {} s",
                    refused.taken,
                    refused.bound,
                    refused.ceiling,
                    refused.retry_after.as_secs()
                ),
                retry_after: refused.retry_after,
            }
        })?;
        let (reply, answer) = oneshot::channel();
        let request = Request {
            place,
            order,
            idempotency_key,
            span: tracing::Span::current(),
            budget,
            reply,
        };
        self.queue.try_send(request).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => IntakeError::Unavailable(
                "too many orders are waiting to be written; retry shortly".into(),
            ),
            mpsc::error::TrySendError::Closed(_) => {
                IntakeError::Unavailable("the service is stopping".into())
            }
        })?;
        answer
            .await
            .map_err(|_| IntakeError::Unavailable("the service is stopping".into()))?
    }
}
