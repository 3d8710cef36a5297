//! One transaction per unit of work: claim the incoming message (inbox), change state,
//! record the events it causes (outbox), commit — all or nothing.

use crate::events::{Envelope, Event};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// The service's database, plus the bell that wakes its outbox relay.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
    outbox_bell: Arc<Notify>,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            outbox_bell: Arc::new(Notify::new()),
        }
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
            recorded_events: false,
        })
    }
}

/// A transaction that may claim an incoming message and record outgoing events.
pub struct UnitOfWork {
    tx: Transaction<'static, Postgres>,
    outbox_bell: Arc<Notify>,
    recorded_events: bool,
}

impl UnitOfWork {
    /// Records `message` as processed. Returns `false` if it already was: its effects are
    /// committed, so the caller must do nothing more. A concurrent duplicate waits here for
    /// the first one's transaction and then sees `false`.
    pub async fn claim(&mut self, message: &Envelope) -> Result<bool, sqlx::Error> {
        let inserted = sqlx::query(
            "INSERT INTO inbox (message_id, event_type) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(message.event_id)
        .bind(message.event.name())
        .execute(&mut *self.tx)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// The transaction, for the service's own statements.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Records `event` for publishing once this transaction commits. `caused_by` is the
    /// `event_id` of the message being handled, sent on as the `causation_id` header.
    pub async fn publish(
        &mut self,
        event: Event,
        caused_by: Option<Uuid>,
    ) -> Result<Envelope, sqlx::Error> {
        let envelope = Envelope::new(event);
        sqlx::query(
            "INSERT INTO outbox (event_id, event_type, routing_key, order_id, causation_id, occurred_at, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(envelope.event_id)
        .bind(envelope.event.name())
        .bind(envelope.event.routing_key())
        .bind(envelope.event.order_id())
        .bind(caused_by)
        .bind(envelope.timestamp)
        .bind(envelope.to_json())
        .execute(&mut *self.tx)
        .await?;
        self.recorded_events = true;
        Ok(envelope)
    }

    /// Commits, then wakes the relay if events were recorded.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        if self.recorded_events {
            self.outbox_bell.notify_one();
        }
        Ok(())
    }
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
