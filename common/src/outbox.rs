//! The outbox relay: publishes committed events and deletes them once RabbitMQ confirmed.
//!
//! Woken by [`crate::store::UnitOfWork::commit`] the moment events are committed, and every
//! half second in case another replica's commit or a crash left some behind. Each batch is
//! locked with `FOR UPDATE SKIP LOCKED`, so replicas share the work without sending an event
//! twice, and deleted in the same transaction only after every confirm arrived: a crash
//! anywhere before the commit leaves the rows to be published again (at-least-once; the
//! consumers' inbox makes the repeat harmless).
//!
//! Confirms are pipelined: while one batch waits for its confirms (RabbitMQ confirms a
//! persistent message once it is on disk, which under load can take a sync interval of
//! tens of milliseconds), the next batch is already locked and sent. Waiting for each batch
//! before sending the next put that interval on every hop of the saga.

use crate::amqp::broker::Broker;
use crate::amqp::publish::{self, OutgoingEvent, PublishError};
use crate::retry::Backoff;
use crate::store::Store;
use lapin::PublisherConfirm;
use sqlx::{Postgres, Transaction};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How many events one transaction publishes at most.
pub const BATCH_SIZE: i64 = 200;
/// Batches sent and waiting for their confirms at once (each holds a connection).
const BATCHES_IN_FLIGHT: usize = 4;
/// How often the relay looks without being woken.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Deleted rows after which the relay vacuums the outbox itself.
const VACUUM_AFTER_ROWS: usize = 10_000;

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

/// A batch that is sent and whose rows stay locked until its confirms arrive.
struct SentBatch {
    tx: Transaction<'static, Postgres>,
    events: Vec<OutgoingEvent>,
    confirms: Vec<PublisherConfirm>,
}

impl SentBatch {
    /// Waits for every confirm, then deletes the rows and commits; returns how many.
    async fn settle(mut self) -> Result<usize, RelayError> {
        publish::confirmed(self.confirms).await?;
        let ids: Vec<_> = self.events.iter().map(|event| event.event_id).collect();
        sqlx::query("DELETE FROM outbox WHERE event_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        for event in &self.events {
            metrics::counter!("messages_published_total", "event_type" => event.event_type.clone())
                .increment(1);
        }
        Ok(self.events.len())
    }
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
        let mut in_flight: JoinSet<Result<usize, RelayError>> = JoinSet::new();
        loop {
            let mut failure = None;
            while let Some(settled) = in_flight.try_join_next() {
                failure = failure.or(self.count(settled).await.err());
            }
            if failure.is_none() && in_flight.len() >= BATCHES_IN_FLIGHT {
                let settled = in_flight.join_next().await.expect("batches in flight");
                failure = self.count(settled).await.err();
            }
            if failure.is_none() {
                if self.broker.current().is_none() && !stop.is_cancelled() {
                    // Nothing can go out before the broker is there; wait quietly for it.
                    self.broker.connected(&stop).await;
                }
                match self.send_batch().await {
                    Ok(Some(sent)) => {
                        backoff.reset();
                        let drained = sent.events.len() < BATCH_SIZE as usize;
                        in_flight.spawn(sent.settle());
                        // A short batch took all there was; anything committed since rang
                        // the bell, so look again only when it rings rather than at once.
                        if !drained || stop.is_cancelled() {
                            continue;
                        }
                        wait_for_events(&bell, &stop).await;
                    }
                    Ok(None) => {
                        if stop.is_cancelled() {
                            self.drain(in_flight).await;
                            return;
                        }
                        wait_for_events(&bell, &stop).await;
                    }
                    Err(error) => failure = Some(error),
                }
            }
            if let Some(error) = failure {
                if stop.is_cancelled() {
                    self.drain(in_flight).await;
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

    /// Counts a settled batch towards the next vacuum; passes its error on.
    async fn count(
        &mut self,
        settled: Result<Result<usize, RelayError>, tokio::task::JoinError>,
    ) -> Result<(), RelayError> {
        let count = settled.expect("a relay batch does not panic")?;
        self.deleted += count;
        if self.deleted >= VACUUM_AFTER_ROWS {
            self.vacuum().await;
        }
        Ok(())
    }

    /// Lets the batches in flight settle (or fail and stay in the outbox).
    async fn drain(&mut self, mut in_flight: JoinSet<Result<usize, RelayError>>) {
        while let Some(settled) = in_flight.join_next().await {
            if let Err(error) = self.count(settled).await {
                tracing::warn!(%error, "a batch was not confirmed; it stays in the outbox");
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

    /// Locks the next batch not already in flight and sends it; `None` when there is none.
    async fn send_batch(&self) -> Result<Option<SentBatch>, RelayError> {
        let mut tx = self.store.pool().begin().await?;
        let events: Vec<OutgoingEvent> = sqlx::query_as(
            "SELECT event_id, event_type, routing_key, order_id, causation_id, occurred_at, payload
             FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(BATCH_SIZE)
        .fetch_all(&mut *tx)
        .await?;
        if events.is_empty() {
            return Ok(None);
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
        Ok(Some(SentBatch {
            tx,
            events,
            confirms,
        }))
    }
}

/// Sleeps until a commit rings the bell, the poll interval passes, or the relay stops.
/// Batches that settle meanwhile are counted on the next pass.
async fn wait_for_events(bell: &tokio::sync::Notify, stop: &CancellationToken) {
    tokio::select! {
        _ = bell.notified() => {}
        _ = tokio::time::sleep(POLL_INTERVAL) => {}
        _ = stop.cancelled() => {}
    }
}

/// How many events wait in the outbox (for `/metrics` and the tests).
pub async fn backlog(store: &Store) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(store.pool())
        .await
}
