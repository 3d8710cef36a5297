//! The consumer loop: take deliveries from the service's queue in batches, apply them in
//! one transaction, and acknowledge only after it committed.
//!
//! Batches form by themselves: whatever deliveries are already waiting when one arrives
//! (up to [`MAX_BATCH`]) are applied together — one `BEGIN`, one inbox claim, one outbox
//! insert and one `COMMIT` for all of them. At low load a batch is a single message, so
//! batching costs no latency; under load it saves most round trips and commits.
//!
//! What happens to a delivery:
//! - applied → ack;
//! - the body is not an event → dead-letter queue at once;
//! - the handler asks to be called again later ([`Handled::RetryAfter`], e.g. an attempt
//!   at an outside call that was declined) → its work so far is committed, the delivery stays unacked, and it
//!   is applied again after the delay;
//! - the handler fails in a way that may pass → republished to the next delay queue
//!   (1 s, 5 s, 30 s, 2 min by default), whose TTL sends it back; after the last delay it
//!   goes to the dead-letter queue with the error and the attempt count in headers;
//! - PostgreSQL is unreachable → the delivery is held (not counted as an attempt) and
//!   retried with backoff until the database is back, so an outage does not empty the queue
//!   into the dead-letter queue.
//!
//! When a batch fails, each of its messages is applied again on its own, so one bad
//! message never holds back the others.
//!
//! Here: what a service implements ([`MessageHandler`], [`Handle`]) and [`run`];
//! `dispatch` finds a message's handler, `subscribe` takes the deliveries and forms
//! batches, `claim` applies a batch in its transaction behind the inbox claim, `settle`
//! acks, retries or dead-letters each message.

mod acks;
mod claim;
mod dispatch;
mod settle;
mod subscribe;

pub use dispatch::{Handle, Subscriptions};

use crate::amqp::broker::{Broker, Link};
use crate::event::{Envelope, Kinds};
use crate::store::{Store, UnitOfWork};
use lapin::message::Delivery;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Span;

/// How many deliveries a consumer holds at once.
pub(crate) const DEFAULT_PREFETCH: u16 = 64;

/// Most messages applied in one transaction.
pub(crate) const MAX_BATCH: usize = 32;

/// Batches applied at the same time. Few, so that under load deliveries wait in the
/// channel a moment and the next batch takes many of them at once.
pub(crate) const CONCURRENT_BATCHES: usize = 2;

/// What a service does with the events it consumes: it names them in [`Self::Consumes`]
/// and handles each kind with its own impl of [`Handle`].
pub trait MessageHandler: Send + Sync + Sized + 'static {
    /// The events this service consumes, as a tuple of event kinds: the published
    /// language's list for this service, whose routing keys its queue is bound to. The
    /// dispatch to its [`Handle`] impls derives from it, and a kind listed without its
    /// handler does not compile.
    type Consumes: Subscriptions<Self>;

    /// Runs once per transaction before the messages are applied, e.g. to lock every row
    /// the batch will touch in one fixed order, so concurrent batches never deadlock.
    fn prepare(
        &self,
        uow: &mut UnitOfWork,
        messages: &[&Incoming<EventOf<Self>>],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let _ = (uow, messages);
        async { Ok(()) }
    }
}

/// The event enum a handler's kinds belong to.
pub type EventOf<H> = <<H as MessageHandler>::Consumes as Kinds>::Event;

/// A parsed delivery, as a handler sees it.
#[derive(Debug, Clone)]
pub struct Incoming<E> {
    pub envelope: Envelope<E>,
    /// The event that caused this one (the `causation_id` header), if the publisher named
    /// one.
    pub causation_id: Option<uuid::Uuid>,
    /// How many times this process has already applied it and been asked to come back
    /// ([`Handled::RetryAfter`]); 0 on first sight, including after a restart.
    pub rounds: u32,
}

/// What applying a message came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Finished: commit and ack.
    Done,
    /// Commit what was written, keep the message, and apply it again after this delay.
    RetryAfter(Duration),
}

/// Why a handler did not finish.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A database error; it may pass (a lock timeout, a restart), so it is retried.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// How long an ack, nack or move may take. On a connection that died under it, lapin's
/// answer may never come; without a bound, the batch holding it would never finish and the
/// consumer would never resubscribe.
const BROKER_OP_TIMEOUT: Duration = Duration::from_secs(5);

/// One received message and its delivery, kept together until it is settled.
struct Message<E> {
    delivery: Delivery,
    incoming: Incoming<E>,
    span: Span,
    /// Times it went to a delay queue before (the `x-retry-count` header).
    retries: u32,
}

/// Everything a subscription needs; cheap to clone into tasks.
struct Work<H> {
    broker: Broker,
    link: Link,
    store: Store,
    handler: Arc<H>,
    stop: CancellationToken,
    /// Batches being applied and messages waiting for their next round.
    in_flight: TaskTracker,
    /// The subscription's unsettled deliveries; every ack and nack goes through it.
    acks: Arc<acks::Acks>,
}

impl<H> Clone for Work<H> {
    fn clone(&self) -> Self {
        Self {
            broker: self.broker.clone(),
            link: self.link.clone(),
            store: self.store.clone(),
            handler: self.handler.clone(),
            stop: self.stop.clone(),
            in_flight: self.in_flight.clone(),
            acks: self.acks.clone(),
        }
    }
}

/// Consumes the service's queue until `stop`, reconnecting with the broker. On `stop` it
/// cancels the subscription, lets in-flight work finish (its messages are acked), and
/// returns; deliveries not yet started go back to the queue.
pub(crate) async fn run<H: MessageHandler>(
    broker: Broker,
    store: Store,
    handler: Arc<H>,
    prefetch: u16,
    stop: CancellationToken,
) {
    while let Some(link) = broker.connected(&stop).await {
        let work = Work {
            broker: broker.clone(),
            link,
            store: store.clone(),
            handler: handler.clone(),
            stop: stop.clone(),
            in_flight: TaskTracker::new(),
            acks: Arc::default(),
        };
        if let Err(error) = work.consume(prefetch).await {
            tracing::warn!(%error, "consumer interrupted; waiting for the broker");
            // The supervisor notices a dead connection within a fraction of a second; a
            // channel-level error on a live connection is retried after a pause.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
