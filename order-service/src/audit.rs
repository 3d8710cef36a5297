//! The saga view's read model: every event on the exchange, as each service published it.
//!
//! A copy of the events order-service neither publishes, consumes nor reads from their
//! publisher (`PaymentRefunded`: `contract::queues::AUDITED`) reaches `<exchange>.audit`;
//! this worker stores one row per event (`saga_events`, keyed by event id, so redeliveries
//! are no-ops) and acks a batch only after its rows are committed. It is a read model, not
//! part of the saga: a body that is not an event is logged and dropped, and rows older
//! than the retention are deleted.

use chrono::{DateTime, Utc};
use common::amqp::broker::{Broker, Link, Subscription};
use common::store::Store;
use contract::OrderId;
use contract::events::Envelope;
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::types::{AMQPValue, FieldTable};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Deliveries stored in one statement at most.
const BATCH: usize = 256;
/// How long an ack or nack may take before the link counts as dead.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often rows past the retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// One event of a saga, as its publisher sent it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SagaEvent {
    pub event_id: Uuid,
    pub order_id: OrderId,
    pub event_type: String,
    pub causation_id: Option<Uuid>,
    pub publisher: String,
    pub occurred_at: DateTime<Utc>,
}

impl SagaEvent {
    /// Reads an audited delivery: the body says what happened, the AMQP properties who
    /// published it and what caused it.
    fn of(delivery: &Delivery) -> Option<Self> {
        let envelope = Envelope::from_json(&delivery.data).ok()?;
        let properties = &delivery.properties;
        let publisher = properties
            .app_id()
            .as_ref()
            .map(|app| app.to_string())
            .unwrap_or_else(|| envelope.event.publisher().name().to_owned());
        let causation_id = properties
            .headers()
            .as_ref()
            .and_then(|headers| header_uuid(headers, "causation_id"));
        Some(Self {
            event_id: envelope.event_id,
            order_id: envelope.event.order_id(),
            event_type: envelope.event.name().to_owned(),
            causation_id,
            publisher,
            occurred_at: envelope.timestamp,
        })
    }
}

fn header_uuid(headers: &FieldTable, name: &str) -> Option<Uuid> {
    match headers.inner().get(name)? {
        AMQPValue::LongString(text) => Uuid::parse_str(&text.to_string()).ok(),
        AMQPValue::ShortString(text) => Uuid::parse_str(text.as_str()).ok(),
        _ => None,
    }
}

/// Stores the audit queue into `saga_events` until `stop`.
pub struct AuditRecorder {
    pub broker: Broker,
    pub store: Store,
    pub retention: Duration,
}

impl AuditRecorder {
    pub async fn run(self, stop: CancellationToken) {
        let pruning = self.prune_periodically(stop.clone());
        let recording = async {
            while let Some(link) = self.broker.connected(&stop).await {
                if let Err(error) = self.consume(&link, &stop).await {
                    tracing::warn!(%error, "audit consumer interrupted; waiting for the broker");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        tokio::join!(pruning, recording);
    }

    async fn consume(&self, link: &Link, stop: &CancellationToken) -> Result<(), lapin::Error> {
        let queue = contract::queues::audit_queue(&self.broker.topology().exchange);
        let Subscription {
            channel,
            mut deliveries,
            ..
        } = link
            .consume(queue.as_str(), BATCH as u16, "order-service-audit")
            .await?;
        tracing::info!(%queue, "recording the saga audit");
        loop {
            let first = tokio::select! {
                _ = stop.cancelled() => break,
                // A dead link can leave `next` waiting forever: move to the next link.
                _ = link.closed() => break,
                next = deliveries.next() => next,
            };
            let mut batch = match first {
                Some(delivery) => vec![delivery?],
                None => break,
            };
            while batch.len() < BATCH {
                match deliveries.next().now_or_never() {
                    Some(Some(Ok(delivery))) => batch.push(delivery),
                    _ => break,
                }
            }
            let last = batch.last().expect("a batch is never empty");
            let settled = match self.record(&batch).await {
                Ok(()) => last.acker.ack(BasicAckOptions { multiple: true }).boxed(),
                Err(error) => {
                    tracing::warn!(%error, "cannot store the saga audit; it comes back later");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    last.acker
                        .nack(BasicNackOptions {
                            multiple: true,
                            requeue: true,
                        })
                        .boxed()
                }
            };
            match tokio::time::timeout(SETTLE_TIMEOUT, settled).await {
                Ok(result) => {
                    result?;
                }
                Err(_) => {
                    tracing::warn!("settling the saga audit timed out; reconnecting");
                    break;
                }
            }
        }
        let _ = channel.close(200, "audit consumer stopping".into()).await;
        Ok(())
    }

    /// Stores a batch in one statement; events already stored are skipped.
    async fn record(&self, batch: &[Delivery]) -> Result<(), sqlx::Error> {
        let events: Vec<SagaEvent> = batch
            .iter()
            .filter_map(|delivery| {
                let event = SagaEvent::of(delivery);
                if event.is_none() {
                    tracing::warn!(
                        bytes = delivery.data.len(),
                        "an audited message is not an event; not recorded"
                    );
                }
                event
            })
            .collect();
        if events.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO saga_events \
                 (event_id, order_id, event_type, causation_id, publisher, occurred_at) \
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], \
                                  $6::timestamptz[]) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.order_id).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.event_type.clone())
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| e.causation_id).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.publisher.clone())
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    async fn prune_periodically(&self, stop: CancellationToken) {
        loop {
            match prune(&self.store, self.retention).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "pruned saga audit rows past retention"),
                Err(error) => tracing::warn!(%error, "cannot prune the saga audit"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
            }
        }
    }
}

/// Deletes audit rows recorded longer than `retention` ago.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn prune(store: &Store, retention: Duration) -> Result<u64, sqlx::Error> {
    let seconds = retention.as_secs_f64();
    let done = sqlx::query(
        "DELETE FROM saga_events WHERE recorded_at < now() - make_interval(secs => $1)",
    )
    .bind(seconds)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected())
}

/// The saga of one order, in the order its events happened.
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id))]
pub async fn saga_of(store: &Store, order_id: OrderId) -> Result<Vec<SagaEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_id, order_id, event_type, causation_id, publisher, occurred_at \
         FROM saga_events WHERE order_id = $1 ORDER BY occurred_at, recorded_at, event_id",
    )
    .bind(order_id)
    .fetch_all(store.pool())
    .await
}
