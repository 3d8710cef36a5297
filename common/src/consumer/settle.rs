//! Settling a delivery once it was applied or failed: ack, come back later, retry through a
//! delay queue, or dead-letter — and count which, by [`Outcome`].

use super::{BROKER_OP_TIMEOUT, EventOf, Handled, HandlerError, Message, MessageHandler, Work};
use crate::amqp::dead_letters;
use crate::amqp::headers::{RETRY_HEADER, keep_first_failure, keep_original_routing_key};
use crate::amqp::publish::{self, PublishError};
use crate::event::Published;
use lapin::message::Delivery;
use lapin::types::AMQPValue;
use std::future::Future;
use std::time::Duration;
use tracing::Instrument;

/// How a delivery that was applied or failed ended; its `outcome` label on
/// `messages_consumed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Applied and acked.
    Handled,
    /// Failed; sent to the next delay queue for another attempt.
    Retried,
    /// Failed for the last time; moved to the dead-letter queue.
    DeadLettered,
}

impl Outcome {
    /// The metric label, as dashboards and alerts spell it.
    fn label(self) -> &'static str {
        match self {
            Self::Handled => "handled",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

impl<H: MessageHandler> Work<H> {
    /// Settles a batch that was applied: the messages that are done are acked together
    /// (one frame when safe, see [`super::acks`]), the others come back later.
    pub(super) async fn settle_applied(
        &self,
        applied: Vec<(Message<EventOf<H>>, Handled)>,
        each: Duration,
    ) {
        let mut done = Vec::with_capacity(applied.len());
        for (message, handled) in applied {
            match handled {
                Handled::Done => {
                    let event_type = message.incoming.envelope.event.event_type();
                    time_handler(event_type, each);
                    count_outcome(event_type, Outcome::Handled);
                    done.push(message);
                }
                Handled::RetryAfter(_) => self.settle(message, Ok(handled), each).await,
            }
        }
        let deliveries: Vec<&Delivery> = done.iter().map(|m| &m.delivery).collect();
        self.acks.ack(&deliveries).await;
    }

    /// Acks, schedules the next round, retries later or dead-letters, as the outcome says.
    pub(super) async fn settle(
        &self,
        message: Message<EventOf<H>>,
        result: Result<Handled, HandlerError>,
        took: Duration,
    ) {
        let event_type = message.incoming.envelope.event.event_type();
        time_handler(event_type, took);
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
                    self.acks.ack(&[&message.delivery]).await;
                    Outcome::Handled
                }
                Err(error) if (message.retries as usize) < delays.len() => {
                    let delay = delays[message.retries as usize];
                    tracing::warn!(%error, attempt = message.retries + 1, retry_in = ?delay, "handler failed; will retry");
                    self.retry_later(&message.delivery, delay, message.retries + 1).await;
                    Outcome::Retried
                }
                Err(error) => {
                    tracing::error!(%error, attempts = message.retries + 1, "handler failed for the last time; dead-lettering");
                    self.dead_letter(&message.delivery, &error.to_string(), message.retries + 1).await;
                    Outcome::DeadLettered
                }
            }
        }
        .instrument(span)
        .await;
        count_outcome(event_type, outcome);
    }

    /// Keeps the delivery and applies it again after `delay`, on its own.
    fn come_back_later(&self, mut message: Message<EventOf<H>>, delay: Duration) {
        let work = self.clone();
        self.in_flight.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {
                    message.incoming.rounds += 1;
                    Box::pin(work.apply_one(message)).await;
                }
                _ = work.stop.cancelled() => work.acks.requeue(&message.delivery).await,
            }
        });
    }

    /// Sends the message to the delay queue for `delay`; it comes back when the TTL ends.
    async fn retry_later(&self, delivery: &Delivery, delay: Duration, retries: u32) {
        let mut properties = delivery.properties.clone();
        let mut headers = properties.headers().clone().unwrap_or_default();
        headers.insert(RETRY_HEADER.into(), AMQPValue::LongUInt(retries));
        // Back from the delay queue it is routed by queue name; keep where it first went.
        keep_original_routing_key(&mut headers, delivery);
        // The first failure's time travels with it into the dead-letter queue.
        keep_first_failure(&mut headers, &chrono::Utc::now().to_rfc3339());
        properties = properties.with_headers(headers);
        let queue = self
            .broker
            .topology()
            .retry_queue(self.broker.own_queue(), delay);
        let copy = publish::Message {
            exchange: "",
            routing_key: &queue,
            payload: &delivery.data,
            properties,
        };
        self.move_then_ack(delivery, self.link.publisher.publish(&[copy]))
            .await;
    }

    pub(super) async fn dead_letter(&self, delivery: &Delivery, reason: &str, attempts: u32) {
        let sent = dead_letters::send(&self.broker, &self.link, delivery, reason, attempts);
        self.move_then_ack(delivery, sent).await;
    }

    /// Acks once `sent` has confirmed the copy elsewhere (within [`BROKER_OP_TIMEOUT`], not
    /// counting time the connection is blocked by an alarm); otherwise returns the delivery
    /// to its queue, after a pause so a broken broker is not hammered.
    async fn move_then_ack(
        &self,
        delivery: &Delivery,
        sent: impl Future<Output = Result<(), PublishError>>,
    ) {
        let sent = self.link.within(BROKER_OP_TIMEOUT, sent).await;
        match sent.unwrap_or(Err(PublishError::NotConnected)) {
            Ok(()) => self.acks.ack(&[delivery]).await,
            Err(error) => {
                tracing::warn!(%error, "could not move the message; returning it to the queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.acks.requeue(delivery).await;
            }
        }
    }
}

/// How long applying a message of `event_type` took.
fn time_handler(event_type: &'static str, took: Duration) {
    metrics::histogram!("handler_duration_seconds", "event_type" => event_type)
        .record(took.as_secs_f64());
}

/// Counts how a message of `event_type` ended.
fn count_outcome(event_type: &'static str, outcome: Outcome) {
    metrics::counter!("messages_consumed_total", "event_type" => event_type, "outcome" => outcome.label())
        .increment(1);
    match outcome {
        Outcome::Retried => {
            metrics::counter!("messages_retried_total", "event_type" => event_type).increment(1)
        }
        Outcome::DeadLettered => {
            metrics::counter!("messages_dead_lettered_total", "event_type" => event_type)
                .increment(1)
        }
        Outcome::Handled => {}
    }
}
