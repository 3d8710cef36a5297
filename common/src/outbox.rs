//! The outbox relay: publishes committed events and deletes them once RabbitMQ confirmed.
//!
//! Woken by [`crate::store::UnitOfWork::commit`] the moment events are committed, and every
//! half second in case another replica's commit or a crash left some behind. Each batch is
//! locked with `FOR UPDATE SKIP LOCKED`, so replicas share the work without sending an event
//! twice, and deleted in the same transaction only after every confirm arrived: a crash
//! anywhere before the commit leaves the rows to be published again (at-least-once; the
//! consumers' inbox makes the repeat harmless).

use crate::amqp::broker::Broker;
use crate::amqp::publish::{self, OutgoingEvent, PublishError};
use crate::retry::Backoff;
use crate::store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many events one transaction publishes at most.
pub const BATCH_SIZE: i64 = 200;
/// How often the relay looks without being woken.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Deleted rows after which the relay vacuums the outbox itself.
const VACUUM_AFTER_ROWS: usize = 10_000;

/// What one pass of the relay found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOutcome {
    /// Published this many events; there may be more.
    Published(usize),
    /// Nothing was waiting.
    Empty,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Publishes the outbox of one service.
pub struct Relay {
    store: Store,
    broker: Broker,
    /// Rows deleted since the last vacuum.
    deleted: usize,
}

impl Relay {
    pub fn new(store: Store, broker: Broker) -> Self {
        Self {
            store,
            broker,
            deleted: 0,
        }
    }

    /// Runs until `stop`, then drains what it can before returning.
    pub async fn run(mut self, stop: CancellationToken) {
        let bell = self.store.outbox_bell();
        let mut backoff = Backoff::reconnect();
        loop {
            if self.broker.current().is_none() && !stop.is_cancelled() {
                // Nothing can go out before the broker is there; wait quietly for it.
                self.broker.connected(&stop).await;
            }
            match self.publish_batch().await {
                Ok(RelayOutcome::Published(count)) => {
                    backoff.reset();
                    self.deleted += count;
                    if self.deleted >= VACUUM_AFTER_ROWS {
                        self.vacuum().await;
                    }
                    continue;
                }
                Ok(RelayOutcome::Empty) => {
                    backoff.reset();
                    if stop.is_cancelled() {
                        return;
                    }
                    tokio::select! {
                        _ = bell.notified() => {}
                        _ = tokio::time::sleep(POLL_INTERVAL) => {}
                        _ = stop.cancelled() => {}
                    }
                }
                Err(error) => {
                    if stop.is_cancelled() {
                        tracing::warn!(%error, "stopping with events still in the outbox; they go out after the restart");
                        return;
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in = ?delay, "outbox relay cannot publish yet");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.cancelled() => {}
                    }
                }
            }
        }
    }

    /// The outbox is a queue: every row is inserted, then deleted. Vacuuming it often keeps
    /// the relay's index scan short even where autovacuum is off or slow to come.
    async fn vacuum(&mut self) {
        match sqlx::query("VACUUM (SKIP_LOCKED) outbox")
            .execute(self.store.pool())
            .await
        {
            Ok(_) => self.deleted = 0,
            Err(error) => tracing::warn!(%error, "could not vacuum the outbox"),
        }
    }

    /// Publishes one batch: lock, send all, wait for all confirms, delete, commit.
    pub async fn publish_batch(&self) -> Result<RelayOutcome, RelayError> {
        let mut tx = self.store.pool().begin().await?;
        let events: Vec<OutgoingEvent> = sqlx::query_as(
            "SELECT event_id, event_type, routing_key, order_id, causation_id, occurred_at, payload,
                    traceparent, tracestate
             FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(BATCH_SIZE)
        .fetch_all(&mut *tx)
        .await?;
        if events.is_empty() {
            return Ok(RelayOutcome::Empty);
        }
        let link = self.broker.current().ok_or(PublishError::NotConnected)?;
        let exchange = &self.broker.topology().exchange;
        let service = self.broker.service();
        let mut confirms = Vec::with_capacity(events.len());
        for event in &events {
            let properties = event.properties(service);
            confirms.push(
                publish::send(
                    &link.publisher,
                    exchange,
                    &event.routing_key,
                    &event.payload,
                    properties,
                )
                .await?,
            );
            tracing::info!(
                order_id = %event.order_id,
                event_type = %event.event_type,
                message_id = %event.event_id,
                routing_key = %event.routing_key,
                "published {}", event.event_type
            );
        }
        publish::confirmed(confirms).await?;

        let ids: Vec<_> = events.iter().map(|event| event.event_id).collect();
        sqlx::query("DELETE FROM outbox WHERE event_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        for event in &events {
            metrics::counter!("messages_published_total", "event_type" => event.event_type.clone())
                .increment(1);
        }
        Ok(RelayOutcome::Published(events.len()))
    }
}

/// How many events wait in the outbox (for `/metrics` and the tests).
pub async fn backlog(store: &Store) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(store.pool())
        .await
}
