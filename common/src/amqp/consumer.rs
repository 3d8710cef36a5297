//! The consumer loop: take deliveries from the service's queue, run the handler, and
//! acknowledge only after its transaction committed.
//!
//! What happens to a delivery:
//! - handled → ack;
//! - the body is not an event, or the handler rejects it → dead-letter queue at once;
//! - the handler fails in a way that may pass → republished to the next delay queue
//!   (1 s, 5 s, 30 s, 2 min by default), whose TTL sends it back; after the last delay it
//!   goes to the dead-letter queue with the error and the attempt count in headers;
//! - PostgreSQL is unreachable → the delivery is held (not counted as an attempt) and
//!   retried with backoff until the database is back, so an outage does not empty the queue
//!   into the dead-letter queue.

use super::broker::{Broker, Link};
use super::dead_letters;
use super::publish::{self, PublishError};
use crate::events::Envelope;
use crate::retry::Backoff;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Header counting how many times a message has been sent back for another attempt.
pub const RETRY_HEADER: &str = "x-retry-count";

/// What a service does with one event.
pub trait MessageHandler: Send + Sync + 'static {
    /// Applies the event. Must be idempotent: the same event may arrive again.
    fn handle(&self, message: &Envelope) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Why a handler did not finish.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The message can never succeed, e.g. it breaks a rule of the contract.
    #[error("rejected: {0}")]
    Rejected(String),
    /// A database error; it may pass (a lock timeout, a restart), so it is retried.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// How many deliveries a consumer holds at once; they are handled concurrently.
pub const DEFAULT_PREFETCH: u16 = 32;

/// Consumes the service's queue until `stop`, reconnecting with the broker. On `stop` it
/// cancels the subscription, lets in-flight handlers finish (their messages are acked),
/// and returns; deliveries not yet started go back to the queue.
pub async fn run<H: MessageHandler>(
    broker: Broker,
    handler: Arc<H>,
    prefetch: u16,
    stop: CancellationToken,
) {
    while let Some(link) = broker.connected(&stop).await {
        if let Err(error) = consume(&broker, &link, &handler, prefetch, &stop).await {
            tracing::warn!(%error, "consumer interrupted; waiting for the broker");
            // The supervisor notices a dead connection within a fraction of a second; a
            // channel-level error on a live connection is retried after a pause.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

async fn consume<H: MessageHandler>(
    broker: &Broker,
    link: &Link,
    handler: &Arc<H>,
    prefetch: u16,
    stop: &CancellationToken,
) -> Result<(), ConsumeError> {
    let queue = broker.topology().queue(broker.service());
    let channel = link.connection.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("{}-{}", broker.service().name(), uuid::Uuid::new_v4());
    let mut deliveries = channel
        .basic_consume(
            queue.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(%queue, prefetch, "consuming");

    let in_flight = TaskTracker::new();
    let result = loop {
        tokio::select! {
            _ = stop.cancelled() => {
                let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
                break Ok(());
            }
            next = deliveries.next() => match next {
                Some(Ok(delivery)) => {
                    let work = Work { broker: broker.clone(), link: link.clone(), handler: handler.clone(), stop: stop.clone() };
                    in_flight.spawn(work.process(delivery));
                }
                Some(Err(error)) => break Err(error.into()),
                None => break Err(ConsumeError::Cancelled),
            }
        }
    };
    in_flight.close();
    in_flight.wait().await;
    let _ = channel.close(200, "consumer stopping".into()).await;
    result
}

/// Why a subscription ended before `stop`.
#[derive(Debug, thiserror::Error)]
enum ConsumeError {
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error("the broker cancelled the subscription")]
    Cancelled,
}

/// Everything one delivery needs.
struct Work<H> {
    broker: Broker,
    link: Link,
    handler: Arc<H>,
    stop: CancellationToken,
}

impl<H: MessageHandler> Work<H> {
    async fn process(self, delivery: Delivery) {
        let retries = header_u32(delivery.properties.headers().as_ref(), RETRY_HEADER);
        let envelope = match Envelope::from_json(&delivery.data) {
            Ok(envelope) => envelope,
            Err(error) => {
                let reason = format!("cannot parse the message: {error}");
                tracing::error!(routing_key = %delivery.routing_key, %reason, "dead-lettering");
                metrics::counter!("messages_dead_lettered_total", "event_type" => "unparseable")
                    .increment(1);
                self.dead_letter(&delivery, &reason, retries + 1).await;
                return;
            }
        };
        let event_type = envelope.event.name();
        let causation_id = header_string(delivery.properties.headers().as_ref(), "causation_id");
        let span = tracing::info_span!(
            "message",
            order_id = %envelope.event.order_id(),
            event_type,
            message_id = %envelope.event_id,
            causation_id = causation_id.as_deref().unwrap_or(""),
        );
        self.handle(delivery, envelope, retries)
            .instrument(span)
            .await;
    }

    async fn handle(self, delivery: Delivery, envelope: Envelope, retries: u32) {
        let event_type = envelope.event.name();
        tracing::info!(retries, "consumed {event_type}");
        let started = Instant::now();
        let mut backoff = Backoff::reconnect();
        let outcome = loop {
            match self.handler.handle(&envelope).await {
                Err(HandlerError::Database(error)) if crate::db::is_unreachable(&error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in = ?delay, "database unreachable; holding the message");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stop.cancelled() => {
                            let _ = delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await;
                            return;
                        }
                    }
                }
                outcome => break outcome,
            }
        };
        metrics::histogram!("handler_duration_seconds", "event_type" => event_type)
            .record(started.elapsed().as_secs_f64());

        let delays = &self.broker.topology().retry_delays;
        let outcome_label = match outcome {
            Ok(()) => {
                ack(&delivery).await;
                "handled"
            }
            Err(HandlerError::Rejected(reason)) => {
                tracing::error!(%reason, "rejected; dead-lettering");
                self.dead_letter(&delivery, &reason, retries + 1).await;
                "dead_lettered"
            }
            Err(error) if (retries as usize) < delays.len() => {
                let delay = delays[retries as usize];
                tracing::warn!(%error, attempt = retries + 1, retry_in = ?delay, "handler failed; will retry");
                self.retry_later(&delivery, delay, retries + 1).await;
                "retried"
            }
            Err(error) => {
                tracing::error!(%error, attempts = retries + 1, "handler failed for the last time; dead-lettering");
                self.dead_letter(&delivery, &error.to_string(), retries + 1)
                    .await;
                "dead_lettered"
            }
        };
        metrics::counter!("messages_consumed_total", "event_type" => event_type, "outcome" => outcome_label)
            .increment(1);
        match outcome_label {
            "retried" => {
                metrics::counter!("messages_retried_total", "event_type" => event_type).increment(1)
            }
            "dead_lettered" => {
                metrics::counter!("messages_dead_lettered_total", "event_type" => event_type)
                    .increment(1)
            }
            _ => {}
        }
    }

    /// Sends the message to the delay queue for `delay`; it comes back when the TTL ends.
    async fn retry_later(&self, delivery: &Delivery, delay: std::time::Duration, retries: u32) {
        let mut properties = delivery.properties.clone();
        let mut headers = properties.headers().clone().unwrap_or_default();
        headers.insert(RETRY_HEADER.into(), AMQPValue::LongUInt(retries));
        properties = properties.with_headers(headers);
        let queue = self
            .broker
            .topology()
            .retry_queue(self.broker.service(), delay);
        let sent = async {
            let confirm =
                publish::send(&self.link.publisher, "", &queue, &delivery.data, properties).await?;
            publish::confirmed([confirm]).await
        };
        self.settle(delivery, sent.await).await;
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str, attempts: u32) {
        let sent = dead_letters::send(&self.broker, &self.link, delivery, reason, attempts).await;
        self.settle(delivery, sent).await;
    }

    /// Acks once the copy is confirmed elsewhere; otherwise returns the delivery to its
    /// queue, after a pause so a broken broker is not hammered.
    async fn settle(&self, delivery: &Delivery, sent: Result<(), PublishError>) {
        match sent {
            Ok(()) => ack(delivery).await,
            Err(error) => {
                tracing::warn!(%error, "could not move the message; returning it to the queue");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let _ = delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await;
            }
        }
    }
}

/// Acks; if that fails the channel is gone and the broker will redeliver the message,
/// which the inbox then recognises as done.
async fn ack(delivery: &Delivery) {
    if let Err(error) = delivery.ack(BasicAckOptions::default()).await {
        tracing::warn!(%error, "ack failed; the message will be redelivered and skipped");
    }
}

pub(crate) fn header_u32(headers: Option<&FieldTable>, name: &str) -> u32 {
    let value = headers.and_then(|headers| headers.inner().get(name));
    match value {
        Some(AMQPValue::LongUInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => (*n).max(0) as u32,
        Some(AMQPValue::LongLongInt(n)) => (*n).clamp(0, u32::MAX as i64) as u32,
        Some(AMQPValue::ShortUInt(n)) => (*n).into(),
        Some(AMQPValue::ShortShortUInt(n)) => (*n).into(),
        _ => 0,
    }
}

pub(crate) fn header_string(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(text) => Some(text.to_string()),
        AMQPValue::ShortString(text) => Some(text.to_string()),
        _ => None,
    }
}
