//! One transaction per unit of work: claim the incoming messages ([`crate::inbox`]), change
//! state, record the events it causes ([`crate::outbox`]), commit — all or nothing.

use crate::events::{Envelope, Event};
use crate::outbox::write::{self, Outgoing};
use crate::outbox::{RelayHealth, Signals};
use crate::trace::TraceHeaders;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::Notify;
use uuid::Uuid;

/// The service's database, plus what connects its outbox writers to its relay: the bell
/// that wakes the relay and what the relay reports about itself (for `/ready`).
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
    outbox: Signals,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            outbox: Signals::default(),
        }
    }

    /// Whether the outbox relay is getting events out.
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
            outbox_bell: self.outbox.bell.clone(),
            outgoing: Vec::new(),
        })
    }
}

/// A transaction that may claim incoming messages and record outgoing events.
pub struct UnitOfWork {
    tx: Transaction<'static, Postgres>,
    outbox_bell: std::sync::Arc<Notify>,
    /// Events to write to the outbox, in one statement, just before the commit.
    outgoing: Vec<Outgoing>,
}

impl UnitOfWork {
    /// The transaction, for the service's own statements.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Records `event` for publishing once this transaction commits. `caused_by` is the
    /// `event_id` of the message being handled, sent on as the `causation_id` header.
    pub fn publish(&mut self, event: Event, caused_by: Option<Uuid>) -> Envelope {
        self.publish_envelope(Envelope::new(event), caused_by)
    }

    /// [`UnitOfWork::publish`] for an envelope whose id and time were chosen beforehand
    /// (e.g. to write them into the same statement that changes the state).
    /// The event joins the trace of the current span.
    pub fn publish_envelope(&mut self, envelope: Envelope, caused_by: Option<Uuid>) -> Envelope {
        let trace = TraceHeaders::for_publish(envelope.event.routing_key());
        self.outgoing.push(Outgoing {
            envelope: envelope.clone(),
            caused_by,
            trace,
        });
        envelope
    }

    /// Writes the recorded events to the outbox, commits, then wakes the relay.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        if !self.outgoing.is_empty() {
            write::write(&mut self.tx, &self.outgoing).await?;
        }
        self.tx.commit().await?;
        if !self.outgoing.is_empty() {
            self.outbox_bell.notify_one();
        }
        Ok(())
    }
}
