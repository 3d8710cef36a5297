//! Names and shape of everything on the broker, derived from the exchange name so that two
//! stacks with different exchanges never see each other's messages.
//!
//! For each service `s`: a durable queue `<exchange>.<s>` bound to the events `s` consumes,
//! its dead-letter queue `<exchange>.<s>.dlq`, and one delay queue per retry step,
//! `<exchange>.<s>.retry.<ms>ms`, whose messages expire back into `<exchange>.<s>`.
//! Besides, `<exchange>.audit` gets a copy of the events order-service's saga view needs
//! and neither publishes nor consumes ([`Service::AUDITED`]).
//!
//! Queues are classic (one node) or quorum (Raft-replicated across a cluster, CONTRACT §11),
//! as [`QueueType`] says. A queue cannot change type in place: RabbitMQ refuses the
//! redeclaration, so switching an existing deployment means recreating its queues (README).

use crate::service::{Descriptor, Service};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use std::str::FromStr;
use std::time::Duration;

/// How every queue is declared (`AMQP_QUEUE_TYPE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueueType {
    /// A queue on one node: enough for one broker, lost with its node in a cluster.
    #[default]
    Classic,
    /// Replicated by Raft across the cluster: survives the loss of a minority of nodes.
    Quorum,
}

impl FromStr for QueueType {
    type Err = &'static str;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "classic" => Ok(Self::Classic),
            "quorum" => Ok(Self::Quorum),
            _ => Err("expected `classic` or `quorum`"),
        }
    }
}

/// Deliveries of one message, without an ack, after which a quorum queue dead-letters it:
/// a backstop for a message that crashes or stalls every consumer it reaches, which the
/// consumer's own retries (a header on a republished copy) never see. Connection losses and
/// shutdowns also return messages, so it is generous; 20 is RabbitMQ 4's default.
pub const DELIVERY_LIMIT: i64 = 20;

/// How many event copies the audit queue holds at most.
pub(crate) const AUDIT_MAX_LENGTH: i64 = 100_000;

/// The broker layout of one stack.
#[derive(Debug, Clone)]
pub struct Topology {
    pub exchange: String,
    /// Delay before each redelivery of a failing message; its length bounds the retries.
    pub retry_delays: Vec<Duration>,
    pub queue_type: QueueType,
}

impl Topology {
    pub fn queue(&self, service: Service) -> String {
        format!("{}.{}", self.exchange, service.short_name())
    }

    pub fn dead_letter_queue(&self, service: Service) -> String {
        format!("{}.dlq", self.queue(service))
    }

    /// The events order-service's saga view (`GET /api/orders/{id}/saga`) does not see
    /// otherwise.
    pub fn audit_queue(&self) -> String {
        format!("{}.audit", self.exchange)
    }

    pub fn retry_queue(&self, service: Service, delay: Duration) -> String {
        format!("{}.retry.{}ms", self.queue(service), delay.as_millis())
    }

    /// Declares the exchange and every service's queue, bindings and dead-letter queue, so
    /// no event is dropped because its consumer has not started yet, plus `own` service's
    /// retry queues. `own` queue's bindings come from its handlers, the others' from the
    /// contract's map (the two agree: [`Descriptor::new`]). Declaring is idempotent;
    /// replicas and restarts repeat it harmlessly.
    pub(crate) async fn declare(&self, channel: &Channel, own: &Descriptor) -> lapin::Result<()> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        for service in Service::ALL {
            let queue = self.queue(service);
            channel
                .queue_declare(
                    queue.as_str().into(),
                    durable,
                    self.queue_arguments(service),
                )
                .await?;
            let subscriptions = if service == own.service {
                own.subscriptions
            } else {
                service.subscriptions()
            };
            for key in subscriptions {
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        self.exchange.as_str().into(),
                        (*key).into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
            channel
                .queue_declare(
                    self.dead_letter_queue(service).as_str().into(),
                    durable,
                    self.dead_letter_queue_arguments(),
                )
                .await?;
        }
        channel
            .queue_declare(
                self.audit_queue().as_str().into(),
                durable,
                self.audit_queue_arguments(),
            )
            .await?;
        for key in Service::AUDITED {
            channel
                .queue_bind(
                    self.audit_queue().as_str().into(),
                    self.exchange.as_str().into(),
                    (*key).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        // Earlier versions bound it to every event (`#`), which also made every publish
        // routable, so `mandatory` never caught a missing consumer binding.
        channel
            .queue_unbind(
                self.audit_queue().as_str().into(),
                self.exchange.as_str().into(),
                "#".into(),
                FieldTable::default(),
            )
            .await?;
        for delay in &self.retry_delays {
            channel
                .queue_declare(
                    self.retry_queue(own.service, *delay).as_str().into(),
                    durable,
                    self.retry_queue_arguments(own.service, *delay),
                )
                .await?;
        }
        Ok(())
    }

    /// A service's queue. Quorum: a message delivered [`DELIVERY_LIMIT`] times without an
    /// ack goes to the service's dead-letter queue, at least once.
    pub(crate) fn queue_arguments(&self, service: Service) -> FieldTable {
        let mut arguments = FieldTable::default();
        if self.queue_type == QueueType::Quorum {
            quorum(&mut arguments);
            arguments.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongLongInt(DELIVERY_LIMIT),
            );
            dead_letter_to(&mut arguments, &self.dead_letter_queue(service));
            at_least_once(&mut arguments);
        }
        arguments
    }

    /// A dead-letter queue: nothing else, and no delivery limit, since an operator's peek
    /// returns messages to it and a limit would drop them.
    pub(crate) fn dead_letter_queue_arguments(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        if self.queue_type == QueueType::Quorum {
            quorum(&mut arguments);
        }
        arguments
    }

    /// The audit copy of every event is bounded: when order-service is away long enough for
    /// it to fill, the oldest copies go first (the saga itself never depends on it).
    pub(crate) fn audit_queue_arguments(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        if self.queue_type == QueueType::Quorum {
            quorum(&mut arguments);
        }
        arguments.insert(
            "x-max-length".into(),
            AMQPValue::LongLongInt(AUDIT_MAX_LENGTH),
        );
        arguments.insert(
            "x-overflow".into(),
            AMQPValue::LongString("drop-head".into()),
        );
        arguments
    }

    /// A delay queue: its messages expire after `delay` back into the service's queue.
    pub(crate) fn retry_queue_arguments(&self, service: Service, delay: Duration) -> FieldTable {
        let mut arguments = FieldTable::default();
        if self.queue_type == QueueType::Quorum {
            quorum(&mut arguments);
        }
        arguments.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(delay.as_millis() as i64),
        );
        dead_letter_to(&mut arguments, &self.queue(service));
        if self.queue_type == QueueType::Quorum {
            at_least_once(&mut arguments);
        }
        arguments
    }
}

fn quorum(arguments: &mut FieldTable) {
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
}

/// Dead-letters through the default exchange straight into `queue`.
fn dead_letter_to(arguments: &mut FieldTable, queue: &str) {
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(queue.into()),
    );
}

/// Quorum queues (RabbitMQ 3.10+) keep a dead-lettered message until its target confirmed
/// it, instead of the classic fire-and-forget; RabbitMQ requires `reject-publish` overflow
/// for it (without a length limit, nothing is ever rejected).
fn at_least_once(arguments: &mut FieldTable) {
    arguments.insert(
        "x-dead-letter-strategy".into(),
        AMQPValue::LongString("at-least-once".into()),
    );
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
}

#[cfg(test)]
mod tests;
