//! One transaction per unit of work: claim the incoming messages (inbox), change state,
//! record the events it causes (outbox), commit — all or nothing.

use crate::events::{Envelope, Event};
use crate::outbox::RelayHealth;
use crate::trace::TraceHeaders;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// The service's database, plus the bell that wakes its outbox relay and what the relay
/// reports about itself (for `/ready`).
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
    outbox_bell: Arc<Notify>,
    relay_health: Arc<RelayHealth>,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            outbox_bell: Arc::new(Notify::new()),
            relay_health: Arc::default(),
        }
    }

    /// Whether the outbox relay is getting events out.
    pub fn relay_health(&self) -> &Arc<RelayHealth> {
        &self.relay_health
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Rung after every commit that recorded events, so the relay publishes them at once.
    pub fn outbox_bell(&self) -> Arc<Notify> {
        self.outbox_bell.clone()
    }

    pub async fn begin(&self) -> Result<UnitOfWork, sqlx::Error> {
        Ok(UnitOfWork {
            tx: self.pool.begin().await?,
            outbox_bell: self.outbox_bell.clone(),
            outgoing: Vec::new(),
        })
    }
}

/// A transaction that may claim incoming messages and record outgoing events.
pub struct UnitOfWork {
    tx: Transaction<'static, Postgres>,
    outbox_bell: Arc<Notify>,
    /// Events to write to the outbox, in one statement, just before the commit.
    outgoing: Vec<Outgoing>,
}

/// An event recorded by [`UnitOfWork::publish`], not yet written.
struct Outgoing {
    envelope: Envelope,
    caused_by: Option<Uuid>,
    /// The producer span's context, a child of the span that recorded the event.
    trace: TraceHeaders,
}

impl UnitOfWork {
    /// Records these messages as processed, in one statement, and returns the ids that were
    /// not processed before (each once, even if it appears twice). A message left out has
    /// its effects committed already, so the caller must do nothing more with it. A
    /// concurrent duplicate waits here for the first one's transaction and is left out.
    pub async fn claim_all(&mut self, message_ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
        sqlx::query_scalar(
            "INSERT INTO inbox (message_id) SELECT DISTINCT unnest($1::uuid[])
             ON CONFLICT DO NOTHING RETURNING message_id",
        )
        .bind(message_ids)
        .fetch_all(&mut *self.tx)
        .await
    }

    /// Gives back claims of messages that are not finished yet (they will be applied again).
    pub async fn release_claims(&mut self, message_ids: &[Uuid]) -> Result<(), sqlx::Error> {
        if !message_ids.is_empty() {
            sqlx::query("DELETE FROM inbox WHERE message_id = ANY($1)")
                .bind(message_ids)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

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
            write_outbox(&mut self.tx, &self.outgoing).await?;
        }
        self.tx.commit().await?;
        if !self.outgoing.is_empty() {
            self.outbox_bell.notify_one();
        }
        Ok(())
    }
}

/// One multi-row insert for all the events of a unit of work.
async fn write_outbox(conn: &mut PgConnection, outgoing: &[Outgoing]) -> Result<(), sqlx::Error> {
    let event_ids: Vec<Uuid> = outgoing.iter().map(|o| o.envelope.event_id).collect();
    let types: Vec<&str> = outgoing.iter().map(|o| o.envelope.event.name()).collect();
    let keys: Vec<&str> = outgoing
        .iter()
        .map(|o| o.envelope.event.routing_key())
        .collect();
    let orders: Vec<Uuid> = outgoing
        .iter()
        .map(|o| o.envelope.event.order_id())
        .collect();
    let causes: Vec<Option<Uuid>> = outgoing.iter().map(|o| o.caused_by).collect();
    let times: Vec<_> = outgoing.iter().map(|o| o.envelope.timestamp).collect();
    let payloads: Vec<Vec<u8>> = outgoing.iter().map(|o| o.envelope.to_json()).collect();
    let parents: Vec<Option<&str>> = outgoing
        .iter()
        .map(|o| o.trace.traceparent.as_deref())
        .collect();
    let states: Vec<Option<&str>> = outgoing
        .iter()
        .map(|o| o.trace.tracestate.as_deref())
        .collect();
    sqlx::query(
        "INSERT INTO outbox (event_id, event_type, routing_key, order_id, causation_id, occurred_at, payload, traceparent, tracestate)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::uuid[], $6::timestamptz[], $7::bytea[], $8::text[], $9::text[])",
    )
    .bind(&event_ids)
    .bind(&types)
    .bind(&keys)
    .bind(&orders)
    .bind(&causes)
    .bind(&times)
    .bind(&payloads)
    .bind(&parents)
    .bind(&states)
    .execute(conn)
    .await?;
    Ok(())
}

/// How long processed message ids are kept. Redeliveries come within minutes; past this,
/// the state guards alone (one reservation, one payment, one ending per order) still make
/// a very late duplicate harmless.
pub const INBOX_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Deletes inbox entries older than [`INBOX_RETENTION`] once an hour until `stop`.
pub async fn prune_inbox(store: Store, stop: tokio_util::sync::CancellationToken) {
    loop {
        let pruned =
            sqlx::query("DELETE FROM inbox WHERE processed_at < now() - make_interval(secs => $1)")
                .bind(INBOX_RETENTION.as_secs_f64())
                .execute(store.pool())
                .await;
        match pruned {
            Ok(done) if done.rows_affected() > 0 => {
                tracing::info!(rows = done.rows_affected(), "pruned old inbox entries")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not prune the inbox"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = stop.cancelled() => return,
        }
    }
}
