//! One transaction per unit of work: claim the incoming messages ([`crate::inbox`]), change
//! state, record the events it causes ([`crate::outbox`]), commit — all or nothing — and
//! then send those events at once.

use crate::amqp::broker::Broker;
use crate::event::{Envelope, Published};
use crate::outbox::write::{self, Outgoing};
use crate::outbox::{Publisher, RelayHealth, Signals};
use crate::trace::TraceHeaders;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// The service's database, plus what connects its outbox writers to its relay: the bell
/// that wakes the relay and what the relay reports about itself (for `/ready`).
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    outbox: Signals,
    /// Sends committed events at once; without it only the relay sends them.
    publisher: Option<Publisher>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A store whose committed events only the relay publishes.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            outbox: Signals::default(),
            publisher: None,
        }
    }

    /// Committed events are then sent through `broker` by the task that committed them.
    pub fn publishing_through(mut self, broker: Broker) -> Self {
        self.publisher = Some(Publisher::new(broker, self.outbox.clone()));
        self
    }

    /// Whether events are getting out of the outbox.
    pub(crate) fn relay_health(&self) -> &RelayHealth {
        &self.outbox.health
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The bell and health the outbox relay shares with this store.
    pub(crate) fn outbox(&self) -> &Signals {
        &self.outbox
    }

    pub async fn begin(&self) -> Result<UnitOfWork, sqlx::Error> {
        Ok(UnitOfWork {
            tx: self.pool.begin().await?,
            store: self.clone(),
            outgoing: Vec::new(),
            committed: Vec::new(),
        })
    }
}

/// A transaction that may claim incoming messages and record outgoing events.
pub struct UnitOfWork {
    tx: Transaction<'static, Postgres>,
    store: Store,
    /// Events to write to the outbox, in one statement, just before the commit.
    outgoing: Vec<Outgoing>,
    /// What to do once the commit succeeded (see [`UnitOfWork::after_commit`]).
    committed: Vec<AfterCommit>,
}

/// A step run once its unit of work committed, in the span it was registered in.
struct AfterCommit {
    span: tracing::Span,
    then: Box<dyn FnOnce() + Send>,
}

impl UnitOfWork {
    /// The transaction, for the service's own statements.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Records `event` for publishing once this transaction commits. `caused_by` is the
    /// `event_id` of the message being handled, sent on as the `causation_id` header.
    pub fn publish<E: Published>(&mut self, event: E, caused_by: Option<Uuid>) -> Envelope<E> {
        self.publish_envelope(Envelope::new(event), caused_by)
    }

    /// [`UnitOfWork::publish`] for an envelope whose id and time were chosen beforehand
    /// (e.g. to write them into the same statement that changes the state).
    /// The event joins the trace of the current span.
    pub fn publish_envelope<E: Published>(
        &mut self,
        envelope: Envelope<E>,
        caused_by: Option<Uuid>,
    ) -> Envelope<E> {
        let trace = TraceHeaders::for_publish(envelope.event.routing_key());
        self.outgoing
            .push(Outgoing::new(&envelope, caused_by, trace));
        envelope
    }

    /// Runs `then` once this transaction has committed, in the current span; never if it
    /// rolls back. For what must not claim more than happened — a log line saying a
    /// payment went through, a counter of calls answered — when a batch may still fail.
    pub fn after_commit(&mut self, then: impl FnOnce() + Send + 'static) {
        self.committed.push(AfterCommit {
            span: tracing::Span::current(),
            then: Box::new(then),
        });
    }

    /// Writes the recorded events to the outbox, commits, then sends them (or, without a
    /// publisher, wakes the relay to) and runs the steps left for after the commit.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        if self.outgoing.is_empty() {
            self.tx.commit().await?;
        } else {
            let rows = write::write(&mut self.tx, std::mem::take(&mut self.outgoing)).await?;
            self.tx.commit().await?;
            match &self.store.publisher {
                Some(publisher) => publisher.publish_committed(rows),
                None => self.store.outbox.leave_to_relay(),
            }
        }
        for step in self.committed {
            step.span.in_scope(step.then);
        }
        Ok(())
    }
}
