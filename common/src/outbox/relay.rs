//! The relay: the outbox's recovery path and its janitor.
//!
//! Events normally go out from the task that committed them ([`super::direct`]); the relay
//! deletes their rows in bulk once RabbitMQ has confirmed them, a moment later. It also
//! publishes whatever is left behind: rows older than [`GRACE`] (a replica that crashed
//! after its commit), and at once every row written before a failed publish or before
//! this start (a sweep; rows written since are being sent by their own task). Each
//! batch is locked with `FOR UPDATE SKIP LOCKED`, so replicas share the work without
//! sending an event twice, and deleted in the same transaction only after every confirm
//! arrived: a crash anywhere before the commit leaves the rows to be published again
//! (at-least-once; the consumers' inbox makes the repeat harmless).
//!
//! A batch waits for RabbitMQ at most [`BROKER_TIMEOUT`]: a link that died without a reset
//! never answers, and lapin would wait for ever while the batch's rows stay locked and
//! other replicas skip them. Past the timeout the batch is rolled back and the link given
//! up, so the broker supervisor opens a fresh one; [`super::RelayHealth`] tells `/ready`.
//!
//! A connection blocked by a resource alarm is not silent, only paused: the relay starts
//! no batch while it is blocked, a batch caught by a block waits without its clock running,
//! and once the alarm clears it sends everything written meanwhile at once.

use super::direct::{BROKER_TIMEOUT, abandon, send_all};
use super::row::OutgoingEvent;
use super::{Signals, count_published};
use crate::amqp::broker::Broker;
use crate::amqp::publish::PublishError;
use crate::retry::Backoff;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How many events one transaction publishes at most.
const BATCH_SIZE: i64 = 200;
/// How often the relay looks for rows left behind without being asked.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How old a row must be before the relay takes it on its own: far longer than a publish
/// after commit takes, so the relay does not send again what is being sent right now.
const GRACE: Duration = Duration::from_secs(5);
/// How long confirmed ids gather before one `DELETE` removes them all.
const DELETE_GATHER: Duration = Duration::from_millis(50);
/// Deleted rows after which the relay vacuums the outbox itself.
const VACUUM_AFTER_ROWS: usize = 10_000;
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

/// Publishes what is left in the outbox of one service and deletes what was confirmed.
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

    /// Runs until `stop`, then waits for the publishes in flight, deletes what they
    /// confirmed and sends what is left before returning.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let signals = self.signals.clone();
        // Rows left from before this start go out at once.
        let mut sweep = Some(Utc::now());
        let mut backoff = Backoff::reconnect();
        let mut backing_off = false;
        let mut next_pass = Instant::now();
        loop {
            tokio::select! {
                // A publish failed: try at once, unless we are already waiting out failures.
                _ = signals.bell.notified(), if !backing_off => {}
                _ = signals.handoff.confirmed_bell.notified() => {
                    tokio::select! {
                        _ = tokio::time::sleep(DELETE_GATHER) => {}
                        _ = stop.cancelled() => {}
                    }
                    self.delete_confirmed().await;
                    continue;
                }
                _ = tokio::time::sleep_until(next_pass) => {}
                _ = stop.cancelled() => return self.drain().await,
            }
            sweep = sweep.max(signals.handoff.take_sweep());
            let Some(link) = self.broker.current() else {
                // Nothing can go out before the broker is there; look again later.
                next_pass = Instant::now() + POLL_INTERVAL;
                continue;
            };
            if link.is_blocked() {
                // Nothing can go out before the alarm clears; then everything written
                // meanwhile goes at once.
                tokio::select! {
                    _ = link.unblocked() => {}
                    _ = stop.cancelled() => return self.drain().await,
                }
                sweep = sweep.max(signals.handoff.take_sweep());
            }
            match self.publish_left_behind(sweep).await {
                Ok(()) => {
                    sweep = None;
                    backing_off = false;
                    backoff.reset();
                    next_pass = Instant::now() + POLL_INTERVAL;
                }
                Err(error) => {
                    // Rows written meanwhile failed to go out too, most likely.
                    sweep = Some(Utc::now());
                    backing_off = true;
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in = ?delay, "outbox relay cannot publish yet");
                    next_pass = Instant::now() + delay;
                }
            }
        }
    }

    /// The last pass: wait for the publishes in flight, delete what they confirmed, send
    /// what they could not.
    async fn drain(mut self) {
        let awaiting = &self.signals.handoff.awaiting;
        awaiting.close();
        // Publishes paused by an alarm may wait for ever; their rows stay for the restart.
        let _ = tokio::time::timeout(BROKER_TIMEOUT, awaiting.wait()).await;
        self.delete_confirmed().await;
        if self.broker.current().is_none_or(|link| link.is_blocked()) {
            return;
        }
        if let Err(error) = self.publish_left_behind(Some(Utc::now())).await {
            tracing::warn!(%error, "stopping with events still in the outbox; they go out after the restart");
        }
    }

    /// Publishes batches until nothing is left: rows older than [`GRACE`], and with a
    /// `sweep`, every row written up to then.
    async fn publish_left_behind(
        &mut self,
        sweep: Option<DateTime<Utc>>,
    ) -> Result<(), RelayError> {
        loop {
            // Rows the committing tasks had confirmed go first, or a long backlog would let
            // them age past the grace and send them again.
            self.delete_confirmed().await;
            let outcome = self.publish_batch(sweep).await;
            self.signals.health.record(outcome.as_ref().map(|_| ()));
            match outcome? {
                RelayOutcome::Published(count) => self.count_deleted(count).await,
                RelayOutcome::Empty => return Ok(()),
            }
        }
    }

    /// Deletes, in one statement, the rows of the events confirmed since the last time.
    async fn delete_confirmed(&mut self) {
        let ids: Vec<Uuid> = self.signals.handoff.take_confirmed();
        if ids.is_empty() {
            return;
        }
        let deleted = sqlx::query("DELETE FROM outbox WHERE event_id = ANY($1)")
            .bind(&ids)
            .execute(&self.pool)
            .await;
        match deleted {
            Ok(done) => self.count_deleted(done.rows_affected() as usize).await,
            Err(error) => {
                // They are confirmed already; a later try deletes them, or past the grace
                // the relay sends them again (the inbox makes that harmless).
                tracing::warn!(%error, rows = ids.len(), "could not delete confirmed outbox rows yet");
                self.signals.handoff.give_back(ids);
            }
        }
    }

    async fn count_deleted(&mut self, count: usize) {
        self.deleted += count;
        if self.deleted >= VACUUM_AFTER_ROWS {
            self.vacuum().await;
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
    async fn publish_batch(
        &self,
        sweep: Option<DateTime<Utc>>,
    ) -> Result<RelayOutcome, RelayError> {
        let mut tx = self.pool.begin().await?;
        let events: Vec<OutgoingEvent> = sqlx::query_as(
            "SELECT event_id, event_type, routing_key, order_id, causation_id, occurred_at, payload,
                    traceparent, tracestate
             FROM outbox
             WHERE written_at <= clock_timestamp() - make_interval(secs => $2)
                OR written_at <= $3
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(BATCH_SIZE)
        .bind(GRACE.as_secs_f64())
        .bind(sweep)
        .fetch_all(&mut *tx)
        .await?;
        if events.is_empty() {
            return Ok(RelayOutcome::Empty);
        }
        let link = self.broker.current().ok_or(PublishError::NotConnected)?;
        let sent = {
            let _waiting = self.signals.health.waiting();
            link.within(BROKER_TIMEOUT, send_all(&self.broker, &link, &events))
                .await
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
                    "no confirms from RabbitMQ in time (not blocked); gave up on the broker link and rolled the batch back"
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
        count_published(events.iter().map(|event| &event.event_type));
        Ok(RelayOutcome::Published(events.len()))
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
