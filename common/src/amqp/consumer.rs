//! The consumer loop: take deliveries from the service's queue in batches, apply them in
//! one transaction, and acknowledge only after it committed.
//!
//! Batches form by themselves: whatever deliveries are already waiting when one arrives
//! (up to [`MAX_BATCH`]) are applied together — one `BEGIN`, one inbox claim, one outbox
//! insert and one `COMMIT` for all of them. At low load a batch is a single message, so
//! batching costs no latency; under load it saves most round trips and commits.
//!
//! What happens to a delivery:
//! - applied → ack;
//! - the body is not an event, or the handler rejects it → dead-letter queue at once;
//! - the handler asks to be called again later ([`Handled::RetryAfter`], e.g. a declined
//!   payment attempt) → its work so far is committed, the delivery stays unacked, and it
//!   is applied again after the delay;
//! - the handler fails in a way that may pass → republished to the next delay queue
//!   (1 s, 5 s, 30 s, 2 min by default), whose TTL sends it back; after the last delay it
//!   goes to the dead-letter queue with the error and the attempt count in headers;
//! - PostgreSQL is unreachable → the delivery is held (not counted as an attempt) and
//!   retried with backoff until the database is back, so an outage does not empty the queue
//!   into the dead-letter queue.
//!
//! When a batch fails, each of its messages is applied again on its own, so one bad
//! message never holds back the others.

use super::broker::{Broker, Link};
use super::dead_letters;
use super::publish::{self, PublishError};
use crate::events::Envelope;
use crate::retry::Backoff;
use crate::store::{Store, UnitOfWork};
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span};

/// Header counting how many times a message has been sent back for another attempt.
pub const RETRY_HEADER: &str = "x-retry-count";

/// How many deliveries a consumer holds at once.
pub const DEFAULT_PREFETCH: u16 = 64;

/// Most messages applied in one transaction.
pub const MAX_BATCH: usize = 32;

/// Batches applied at the same time. Few, so that under load deliveries wait in the
/// channel a moment and the next batch takes many of them at once.
pub const CONCURRENT_BATCHES: usize = 2;

/// What a service does with one event.
pub trait MessageHandler: Send + Sync + 'static {
    /// Applies the event inside `uow`, which the consumer has already used to claim the
    /// message in the inbox and commits afterwards. Must be idempotent: the same event may
    /// arrive again with another message id.
    fn apply(
        &self,
        uow: &mut UnitOfWork,
        message: &Incoming,
    ) -> impl Future<Output = Result<Handled, HandlerError>> + Send;

    /// Runs once per transaction before the messages are applied, e.g. to lock every row
    /// the batch will touch in one fixed order, so concurrent batches never deadlock.
    fn prepare(
        &self,
        uow: &mut UnitOfWork,
        messages: &[&Incoming],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let _ = (uow, messages);
        async { Ok(()) }
    }
}

/// A parsed delivery, as a handler sees it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub envelope: Envelope,
    /// How many times this process has already applied it and been asked to come back
    /// ([`Handled::RetryAfter`]); 0 on first sight, including after a restart.
    pub rounds: u32,
}

/// What applying a message came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Finished: commit and ack.
    Done,
    /// Commit what was written, keep the message, and apply it again after this delay.
    RetryAfter(Duration),
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

/// Consumes the service's queue until `stop`, reconnecting with the broker. On `stop` it
/// cancels the subscription, lets in-flight work finish (its messages are acked), and
/// returns; deliveries not yet started go back to the queue.
pub async fn run<H: MessageHandler>(
    broker: Broker,
    store: Store,
    handler: Arc<H>,
    prefetch: u16,
    stop: CancellationToken,
) {
    while let Some(link) = broker.connected(&stop).await {
        let work = Work {
            broker: broker.clone(),
            link,
            store: store.clone(),
            handler: handler.clone(),
            stop: stop.clone(),
            in_flight: TaskTracker::new(),
        };
        if let Err(error) = work.consume(prefetch).await {
            tracing::warn!(%error, "consumer interrupted; waiting for the broker");
            // The supervisor notices a dead connection within a fraction of a second; a
            // channel-level error on a live connection is retried after a pause.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Why a subscription ended before `stop`.
#[derive(Debug, thiserror::Error)]
enum ConsumeError {
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error("the broker cancelled the subscription")]
    Cancelled,
    #[error("the connection was given up")]
    LinkLost,
}

/// Resolves once `link` no longer counts as open.
async fn link_closed(link: &Link) {
    while link.is_open() {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One received message and its delivery, kept together until it is settled.
struct Message {
    delivery: Delivery,
    incoming: Incoming,
    span: Span,
    /// Times it went to a delay queue before (the `x-retry-count` header).
    retries: u32,
}

/// Everything a subscription needs; cheap to clone into tasks.
struct Work<H> {
    broker: Broker,
    link: Link,
    store: Store,
    handler: Arc<H>,
    stop: CancellationToken,
    /// Batches being applied and messages waiting for their next round.
    in_flight: TaskTracker,
}

impl<H> Clone for Work<H> {
    fn clone(&self) -> Self {
        Self {
            broker: self.broker.clone(),
            link: self.link.clone(),
            store: self.store.clone(),
            handler: self.handler.clone(),
            stop: self.stop.clone(),
            in_flight: self.in_flight.clone(),
        }
    }
}

impl<H: MessageHandler> Work<H> {
    async fn consume(&self, prefetch: u16) -> Result<(), ConsumeError> {
        let queue = self.broker.topology().queue(self.broker.service());
        let channel = self.link.connection.create_channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let tag = format!("{}-{}", self.broker.service().name(), uuid::Uuid::new_v4());
        let mut deliveries = channel
            .basic_consume(
                queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(%queue, prefetch, "consuming");

        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_BATCHES));
        let result = loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break Ok(());
            };
            let first = tokio::select! {
                _ = self.stop.cancelled() => {
                    let cancel = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default());
                    let _ = tokio::time::timeout(BROKER_OP_TIMEOUT, cancel).await;
                    break Ok(());
                }
                next = deliveries.next() => next,
                // Given up elsewhere (e.g. by the outbox relay after a silent link): its
                // deliveries would never come, so subscribe again on the next link.
                _ = link_closed(&self.link) => break Err(ConsumeError::LinkLost),
            };
            let mut batch = match first {
                Some(Ok(delivery)) => vec![delivery],
                Some(Err(error)) => break Err(error.into()),
                None => break Err(ConsumeError::Cancelled),
            };
            // Whatever else is already here joins the batch; nothing waits for more.
            while batch.len() < MAX_BATCH {
                match deliveries.next().now_or_never() {
                    Some(Some(Ok(delivery))) => batch.push(delivery),
                    _ => break,
                }
            }
            let work = self.clone();
            self.in_flight.spawn(async move {
                work.process(batch).await;
                drop(slot);
            });
        };
        self.in_flight.close();
        self.in_flight.wait().await;
        let close = channel.close(200, "consumer stopping".into());
        let _ = tokio::time::timeout(BROKER_OP_TIMEOUT, close).await;
        result
    }

    /// Parses a batch, dead-letters what is not an event, and applies the rest.
    async fn process(self, batch: Vec<Delivery>) {
        let queue = self.broker.topology().queue(self.broker.service());
        let mut messages = Vec::with_capacity(batch.len());
        for delivery in batch {
            let retries = header_u32(delivery.properties.headers().as_ref(), RETRY_HEADER);
            match Envelope::from_json(&delivery.data) {
                Ok(envelope) => {
                    let causation =
                        header_string(delivery.properties.headers().as_ref(), "causation_id");
                    // The consumer span, continuing the producer's trace (CONTRACT §10).
                    let span = tracing::info_span!(
                        "message",
                        order_id = %envelope.event.order_id(),
                        event_type = envelope.event.name(),
                        message_id = %envelope.event_id,
                        causation_id = causation.as_deref().unwrap_or(""),
                        otel.name = format!("{queue} process"),
                        otel.kind = "consumer",
                        messaging.system = "rabbitmq",
                        messaging.operation.type = "process",
                        messaging.destination.name = %delivery.exchange,
                        messaging.rabbitmq.destination.routing_key = %delivery.routing_key,
                    );
                    crate::trace::continue_from_amqp(&span, delivery.properties.headers().as_ref());
                    span.in_scope(|| tracing::info!(retries, "consumed {}", envelope.event.name()));
                    messages.push(Message {
                        delivery,
                        incoming: Incoming {
                            envelope,
                            rounds: 0,
                        },
                        span,
                        retries,
                    });
                }
                Err(error) => {
                    let reason = format!("cannot parse the message: {error}");
                    tracing::error!(routing_key = %delivery.routing_key, %reason, "dead-lettering");
                    metrics::counter!("messages_dead_lettered_total", "event_type" => "unparseable")
                        .increment(1);
                    self.dead_letter(&delivery, &reason, retries + 1).await;
                }
            }
        }
        if messages.is_empty() {
            return;
        }
        metrics::histogram!("consumer_batch_size").record(messages.len() as f64);
        if messages.len() == 1 {
            self.apply_one(messages.pop().expect("one message")).await;
            return;
        }
        let started = Instant::now();
        match self.hold_while_unreachable(&messages).await {
            Some(Ok(results)) => {
                let each = started.elapsed() / messages.len() as u32;
                for (message, handled) in messages.into_iter().zip(results) {
                    self.settle(message, Ok(handled), each).await;
                }
            }
            Some(Err(error)) => {
                tracing::warn!(%error, size = messages.len(), "batch failed; applying its messages one by one");
                for message in messages {
                    self.apply_one(message).await;
                }
            }
            None => {}
        }
    }

    /// Applies one message in its own transaction and settles it.
    async fn apply_one(&self, message: Message) {
        let started = Instant::now();
        let one = std::slice::from_ref(&message);
        let Some(result) = self.hold_while_unreachable(one).await else {
            return;
        };
        let result = result.map(|mut handled| handled.pop().unwrap_or(Handled::Done));
        self.settle(message, result, started.elapsed()).await;
    }

    /// Applies `messages` together, waiting out database outages. `None` when the service
    /// is stopping meanwhile; the deliveries then go back to the queue.
    async fn hold_while_unreachable(
        &self,
        messages: &[Message],
    ) -> Option<Result<Vec<Handled>, HandlerError>> {
        let mut backoff = Backoff::reconnect();
        loop {
            match self.apply_together(messages).await {
                Err(HandlerError::Database(error)) if crate::db::is_unreachable(&error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in = ?delay, size = messages.len(), "database unreachable; holding the messages");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stop.cancelled() => {
                            for message in messages {
                                requeue(&message.delivery).await;
                            }
                            return None;
                        }
                    }
                }
                outcome => return Some(outcome),
            }
        }
    }

    /// One transaction: claim every message in the inbox, apply the new ones, give back
    /// the claims of those that will be applied again, commit.
    async fn apply_together(&self, messages: &[Message]) -> Result<Vec<Handled>, HandlerError> {
        // A batch's transaction is traced under its first message.
        let transaction = tracing::info_span!(
            parent: &messages[0].span,
            "transaction",
            otel.name = "postgresql transaction",
            db.system = "postgresql",
            db.operation.batch.size = messages.len(),
        );
        self.apply_in_transaction(messages)
            .instrument(transaction)
            .await
    }

    async fn apply_in_transaction(
        &self,
        messages: &[Message],
    ) -> Result<Vec<Handled>, HandlerError> {
        let mut uow = self.store.begin().await?;
        let ids: Vec<_> = messages
            .iter()
            .map(|m| m.incoming.envelope.event_id)
            .collect();
        let mut unclaimed: HashSet<_> = uow.claim_all(&ids).await?.into_iter().collect();
        let new: Vec<&Incoming> = messages
            .iter()
            .map(|m| &m.incoming)
            .filter(|m| unclaimed.contains(&m.envelope.event_id))
            .collect();
        if !new.is_empty() {
            self.handler.prepare(&mut uow, &new).await?;
        }
        let mut results = Vec::with_capacity(messages.len());
        let mut coming_back = Vec::new();
        for message in messages {
            let id = message.incoming.envelope.event_id;
            if !unclaimed.remove(&id) {
                message
                    .span
                    .in_scope(|| tracing::info!("already handled; skipped"));
                results.push(Handled::Done);
                continue;
            }
            let handled = self
                .handler
                .apply(&mut uow, &message.incoming)
                .instrument(message.span.clone())
                .await?;
            if let Handled::RetryAfter(_) = handled {
                coming_back.push(id);
            }
            results.push(handled);
        }
        uow.release_claims(&coming_back).await?;
        uow.commit().await?;
        Ok(results)
    }

    /// Acks, schedules the next round, retries later or dead-letters, as the outcome says.
    async fn settle(
        &self,
        message: Message,
        result: Result<Handled, HandlerError>,
        took: Duration,
    ) {
        let event_type = message.incoming.envelope.event.name();
        metrics::histogram!("handler_duration_seconds", "event_type" => event_type)
            .record(took.as_secs_f64());
        let result = match result {
            Ok(Handled::RetryAfter(delay)) => return self.come_back_later(message, delay),
            Ok(Handled::Done) => Ok(()),
            Err(error) => Err(error),
        };
        let delays = &self.broker.topology().retry_delays;
        let span = message.span.clone();
        let outcome = async {
            match result {
                Ok(()) => {
                    ack(&message.delivery).await;
                    "handled"
                }
                Err(HandlerError::Rejected(reason)) => {
                    tracing::error!(%reason, "rejected; dead-lettering");
                    self.dead_letter(&message.delivery, &reason, message.retries + 1).await;
                    "dead_lettered"
                }
                Err(error) if (message.retries as usize) < delays.len() => {
                    let delay = delays[message.retries as usize];
                    tracing::warn!(%error, attempt = message.retries + 1, retry_in = ?delay, "handler failed; will retry");
                    self.retry_later(&message.delivery, delay, message.retries + 1).await;
                    "retried"
                }
                Err(error) => {
                    tracing::error!(%error, attempts = message.retries + 1, "handler failed for the last time; dead-lettering");
                    self.dead_letter(&message.delivery, &error.to_string(), message.retries + 1).await;
                    "dead_lettered"
                }
            }
        }
        .instrument(span)
        .await;
        metrics::counter!("messages_consumed_total", "event_type" => event_type, "outcome" => outcome)
            .increment(1);
        match outcome {
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

    /// Keeps the delivery and applies it again after `delay`, on its own.
    fn come_back_later(&self, mut message: Message, delay: Duration) {
        let work = self.clone();
        self.in_flight.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {
                    message.incoming.rounds += 1;
                    Box::pin(work.apply_one(message)).await;
                }
                _ = work.stop.cancelled() => requeue(&message.delivery).await,
            }
        });
    }

    /// Sends the message to the delay queue for `delay`; it comes back when the TTL ends.
    async fn retry_later(&self, delivery: &Delivery, delay: Duration, retries: u32) {
        let mut properties = delivery.properties.clone();
        let mut headers = properties.headers().clone().unwrap_or_default();
        headers.insert(RETRY_HEADER.into(), AMQPValue::LongUInt(retries));
        // Back from the delay queue it is routed by queue name; keep where it first went.
        dead_letters::keep_original_routing_key(&mut headers, delivery);
        // The first failure's time travels with it into the dead-letter queue.
        dead_letters::keep_first_failure(&mut headers, &chrono::Utc::now().to_rfc3339());
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
        move_then_ack(delivery, sent).await;
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str, attempts: u32) {
        let sent = dead_letters::send(&self.broker, &self.link, delivery, reason, attempts);
        move_then_ack(delivery, sent).await;
    }
}

/// Acks once `sent` has confirmed the copy elsewhere (within [`BROKER_OP_TIMEOUT`]);
/// otherwise returns the delivery to its queue, after a pause so a broken broker is not
/// hammered.
async fn move_then_ack(delivery: &Delivery, sent: impl Future<Output = Result<(), PublishError>>) {
    let sent = tokio::time::timeout(BROKER_OP_TIMEOUT, sent).await;
    match sent.unwrap_or(Err(PublishError::NotConnected)) {
        Ok(()) => ack(delivery).await,
        Err(error) => {
            tracing::warn!(%error, "could not move the message; returning it to the queue");
            tokio::time::sleep(Duration::from_secs(1)).await;
            requeue(delivery).await;
        }
    }
}

/// How long an ack, nack or move may take. On a connection that died under it, lapin's
/// answer may never come; without a bound, the batch holding it would never finish and the
/// consumer would never resubscribe.
const BROKER_OP_TIMEOUT: Duration = Duration::from_secs(5);

/// Acks; if that fails the channel is gone and the broker will redeliver the message,
/// which the inbox then recognises as done.
async fn ack(delivery: &Delivery) {
    match tokio::time::timeout(BROKER_OP_TIMEOUT, delivery.ack(BasicAckOptions::default())).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "ack failed; the message will be redelivered and skipped")
        }
        Err(_) => tracing::warn!("ack timed out; the message will be redelivered and skipped"),
    }
}

/// Hands the delivery back to the broker for another consumer or a later try.
async fn requeue(delivery: &Delivery) {
    let nack = delivery.nack(BasicNackOptions {
        requeue: true,
        ..Default::default()
    });
    let _ = tokio::time::timeout(BROKER_OP_TIMEOUT, nack).await;
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
