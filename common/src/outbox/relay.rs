//! The relay: publishes committed events and deletes them once RabbitMQ confirmed.
//!
//! Woken by `UnitOfWork::commit` the moment events are committed, and every
//! half second in case another replica's commit or a crash left some behind. Each batch is
//! locked with `FOR UPDATE SKIP LOCKED`, so replicas share the work without sending an event
//! twice, and deleted in the same transaction only after every confirm arrived: a crash
//! anywhere before the commit leaves the rows to be published again (at-least-once; the
//! consumers' inbox makes the repeat harmless).
//!
//! A batch waits for RabbitMQ at most [`BROKER_TIMEOUT`]: a link that died without a reset
//! never answers, and lapin would wait for ever while the batch's rows stay locked and
//! other replicas skip them. Past the timeout the batch is rolled back and the link given
//! up, so the broker supervisor opens a fresh one; [`super::RelayHealth`] tells `/ready`.

use super::Signals;
use super::row::OutgoingEvent;
use crate::amqp::broker::{Broker, Link};
use crate::amqp::publish::{self, PublishError};
use crate::retry::Backoff;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many events one transaction publishes at most.
const BATCH_SIZE: i64 = 200;
/// How often the relay looks without being woken.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Deleted rows after which the relay vacuums the outbox itself.
const VACUUM_AFTER_ROWS: usize = 10_000;
/// How long one batch may wait for RabbitMQ, publishes and confirms together. A working
/// broker confirms a full batch in milliseconds; this leaves room for a busy one.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long giving back a batch's locks may take before the connection is dropped instead.
const ROLLBACK_TIMEOUT: Duration = Duration::from_secs(5);

/// What one pass of the relay found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelayOutcome {
    /// Published this many events; there may be more.
    Published(usize),
    /// Nothing was waiting.
    Empty,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("RabbitMQ did not confirm the batch within {0:?}")]
    Stalled(Duration),
}

/// Publishes the outbox of one service.
pub(crate) struct Relay {
    pool: PgPool,
    signals: Signals,
    broker: Broker,
    /// Rows deleted since the last vacuum.
    deleted: usize,
}

impl Relay {
    pub(crate) fn new(pool: PgPool, signals: Signals, broker: Broker) -> Self {
        Self {
            pool,
            signals,
            broker,
            deleted: 0,
        }
    }

    /// Runs until `stop`, then drains what it can before returning.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let bell = self.signals.bell.clone();
        let mut backoff = Backoff::reconnect();
        loop {
            if self.broker.current().is_none() && !stop.is_cancelled() {
                // Nothing can go out before the broker is there; wait quietly for it.
                self.broker.connected(&stop).await;
            }
            let outcome = self.publish_batch().await;
            self.signals.health.record(outcome.as_ref().map(|_| ()));
            match outcome {
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
            .execute(&self.pool)
            .await
        {
            Ok(_) => self.deleted = 0,
            Err(error) => tracing::warn!(%error, "could not vacuum the outbox"),
        }
    }

    /// Publishes one batch: lock, send all, wait for all confirms, delete, commit.
    async fn publish_batch(&self) -> Result<RelayOutcome, RelayError> {
        let mut tx = self.pool.begin().await?;
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
        let sent = {
            let _waiting = self.signals.health.waiting();
            tokio::time::timeout(BROKER_TIMEOUT, self.send_all(&link, &events)).await
        };
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                release(tx).await;
                return Err(error.into());
            }
            Err(_) => {
                release(tx).await;
                tracing::warn!(
                    events = events.len(),
                    timeout = ?BROKER_TIMEOUT,
                    "no confirms from RabbitMQ in time; gave up on the broker link and rolled the batch back"
                );
                abandon(&link);
                return Err(RelayError::Stalled(BROKER_TIMEOUT));
            }
        }

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

    /// Sends every event of the batch, then waits for all their confirms.
    async fn send_all(&self, link: &Link, events: &[OutgoingEvent]) -> Result<(), PublishError> {
        let exchange = &self.broker.topology().exchange;
        let service = self.broker.service();
        let mut confirms = Vec::with_capacity(events.len());
        for event in events {
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
        publish::confirmed(confirms).await
    }
}

/// Rolls a batch back so its rows are free for the next pass or another replica at once.
/// If the database does not answer either, dropping the transaction closes its connection,
/// which frees the rows just the same once PostgreSQL notices.
async fn release(tx: sqlx::Transaction<'static, sqlx::Postgres>) {
    if tokio::time::timeout(ROLLBACK_TIMEOUT, tx.rollback())
        .await
        .is_err()
    {
        tracing::warn!("could not roll the outbox batch back in time");
    }
}

/// Gives up on a link that stopped answering: closing marks its connection as closing at
/// once, so the broker supervisor opens a fresh one and consumers resubscribe. The close
/// handshake itself may never be answered, so it runs out in the background.
fn abandon(link: &Link) {
    let connection = link.connection.clone();
    tokio::spawn(async move {
        let close = connection.close(200, "publisher stopped answering".into());
        let _ = tokio::time::timeout(BROKER_TIMEOUT, close).await;
    });
}
