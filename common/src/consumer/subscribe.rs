//! Subscribing and batching: one subscription per broker link; whatever deliveries are
//! already waiting when one arrives join its batch, which is parsed and handed on.

use super::{
    BROKER_OP_TIMEOUT, CONCURRENT_BATCHES, EventOf, Incoming, MAX_BATCH, Message, MessageHandler,
    Work,
};
use crate::amqp::broker::Subscription;
use crate::amqp::headers::{RETRY_HEADER, header_string, header_u32};
use crate::event::{Envelope, Published};
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::BasicCancelOptions;
use std::sync::Arc;
use std::time::Instant;

/// Why a subscription ended before `stop`.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConsumeError {
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error("the broker cancelled the subscription")]
    Cancelled,
    #[error("the connection was given up")]
    LinkLost,
}

impl<H: MessageHandler> Work<H> {
    pub(super) async fn consume(&self, prefetch: u16) -> Result<(), ConsumeError> {
        let queue = &self.broker.own_queue().name;
        let Subscription {
            channel,
            mut deliveries,
            tag,
        } = self
            .link
            .consume(queue, prefetch, self.broker.name())
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
                _ = self.link.closed() => break Err(ConsumeError::LinkLost),
            };
            let mut batch = match first {
                Some(Ok(delivery)) => {
                    self.acks.received(&delivery);
                    vec![delivery]
                }
                Some(Err(error)) => break Err(error.into()),
                None => {
                    // Most likely the queue was deleted: have it declared again.
                    self.broker.heal();
                    break Err(ConsumeError::Cancelled);
                }
            };
            // Whatever else is already here joins the batch; nothing waits for more.
            while batch.len() < MAX_BATCH {
                match deliveries.next().now_or_never() {
                    Some(Some(Ok(delivery))) => {
                        self.acks.received(&delivery);
                        batch.push(delivery);
                    }
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
        let queue = &self.broker.own_queue().name;
        let mut messages = Vec::with_capacity(batch.len());
        for delivery in batch {
            let retries = header_u32(delivery.properties.headers().as_ref(), RETRY_HEADER);
            match Envelope::<EventOf<H>>::from_json(&delivery.data) {
                Ok(envelope) => {
                    let causation =
                        header_string(delivery.properties.headers().as_ref(), "causation_id");
                    // The consumer span, continuing the producer's trace (CONTRACT §10).
                    let span = tracing::info_span!(
                        "message",
                        order_id = %envelope.event.correlation_id(),
                        event_type = envelope.event.event_type(),
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
                    span.in_scope(|| {
                        tracing::info!(retries, "consumed {}", envelope.event.event_type())
                    });
                    messages.push(Message {
                        delivery,
                        incoming: Incoming {
                            envelope,
                            causation_id: causation.as_deref().and_then(|id| id.parse().ok()),
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
                self.settle_applied(messages.into_iter().zip(results).collect(), each)
                    .await;
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
}
