//! What is on the broker, and declaring it. The published language (a service's `contract`
//! crate) says which queues there are, what each is bound to and how they are named — a
//! [`Layout`] for one exchange; `common` declares it whole and adds what only the
//! machinery needs: each consumer queue's delay queues for retries,
//! `<queue>.retry.<ms>ms`, whose messages expire back into the queue.
//!
//! Queues are classic (one node) or quorum (Raft-replicated across a cluster, CONTRACT §11),
//! as [`QueueType`] says. A queue cannot change type in place: RabbitMQ refuses the
//! redeclaration, so switching an existing deployment means recreating its queues (README).

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

/// Every queue survives a broker restart.
const DURABLE: QueueDeclareOptions = QueueDeclareOptions {
    passive: false,
    durable: true,
    exclusive: false,
    auto_delete: false,
    nowait: false,
};

/// How many event copies a [`CopyQueue`] holds at most.
pub(crate) const COPY_MAX_LENGTH: i64 = 100_000;

pub use wire::layout::{ConsumerQueue, CopyQueue, Layout};

/// The broker layout of one stack.
#[derive(Debug, Clone)]
pub struct Topology {
    pub exchange: String,
    /// Delay before each redelivery of a failing message; its length bounds the retries.
    pub retry_delays: Vec<Duration>,
    pub queue_type: QueueType,
    pub layout: Layout,
}

impl Topology {
    /// The queue `owner` consumes from, if the layout gives it one.
    pub fn consumer(&self, owner: &str) -> Option<&ConsumerQueue> {
        self.layout
            .consumers
            .iter()
            .find(|queue| queue.owner == owner)
    }

    /// The delay queue of `queue` for `delay`.
    pub fn retry_queue(&self, queue: &ConsumerQueue, delay: Duration) -> String {
        format!("{}.retry.{}ms", queue.name, delay.as_millis())
    }

    /// Declares the exchange and every queue of the layout with its bindings and
    /// dead-letter queue, so no event is dropped because its consumer has not started yet,
    /// plus `own` queue's retry queues. Declaring is idempotent; replicas and restarts
    /// repeat it harmlessly.
    pub(crate) async fn declare(
        &self,
        channel: &Channel,
        own: &ConsumerQueue,
    ) -> lapin::Result<()> {
        self.declare_layout(channel).await?;
        for delay in &self.retry_delays {
            channel
                .queue_declare(
                    self.retry_queue(own, *delay).as_str().into(),
                    DURABLE,
                    self.retry_queue_arguments(own, *delay),
                )
                .await?;
        }
        Ok(())
    }

    /// Declares the exchange and every queue of the layout, without any service's retry
    /// queues: what a stand-in for the whole system (loadgen's calibration) declares.
    pub async fn declare_layout(&self, channel: &Channel) -> lapin::Result<()> {
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
        for queue in &self.layout.consumers {
            channel
                .queue_declare(
                    queue.name.as_str().into(),
                    DURABLE,
                    self.queue_arguments(queue),
                )
                .await?;
            self.bind(channel, &queue.name, queue.bindings).await?;
            channel
                .queue_declare(
                    queue.dead_letters.as_str().into(),
                    DURABLE,
                    self.dead_letter_queue_arguments(),
                )
                .await?;
        }
        for copy in &self.layout.copies {
            channel
                .queue_declare(
                    copy.name.as_str().into(),
                    DURABLE,
                    self.copy_queue_arguments(),
                )
                .await?;
            self.bind(channel, &copy.name, copy.bindings).await?;
            for key in copy.retired {
                channel
                    .queue_unbind(
                        copy.name.as_str().into(),
                        self.exchange.as_str().into(),
                        (*key).into(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn bind(&self, channel: &Channel, queue: &str, keys: &[&str]) -> lapin::Result<()> {
        for key in keys {
            channel
                .queue_bind(
                    queue.into(),
                    self.exchange.as_str().into(),
                    (*key).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }

    /// A service's queue. Quorum: a message delivered [`DELIVERY_LIMIT`] times without an
    /// ack goes to the service's dead-letter queue, at least once.
    pub(crate) fn queue_arguments(&self, queue: &ConsumerQueue) -> FieldTable {
        let mut arguments = FieldTable::default();
        if self.queue_type == QueueType::Quorum {
            quorum(&mut arguments);
            arguments.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongLongInt(DELIVERY_LIMIT),
            );
            dead_letter_to(&mut arguments, &queue.dead_letters);
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

    /// A copy queue is bounded: when its reader is away long enough for it to fill, the
    /// oldest copies go first (the saga itself never depends on it).
    pub(crate) fn copy_queue_arguments(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        if self.queue_type == QueueType::Quorum {
            quorum(&mut arguments);
        }
        arguments.insert(
            "x-max-length".into(),
            AMQPValue::LongLongInt(COPY_MAX_LENGTH),
        );
        arguments.insert(
            "x-overflow".into(),
            AMQPValue::LongString("drop-head".into()),
        );
        arguments
    }

    /// A delay queue: its messages expire after `delay` back into the service's queue.
    pub(crate) fn retry_queue_arguments(
        &self,
        queue: &ConsumerQueue,
        delay: Duration,
    ) -> FieldTable {
        let mut arguments = FieldTable::default();
        if self.queue_type == QueueType::Quorum {
            quorum(&mut arguments);
        }
        arguments.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(delay.as_millis() as i64),
        );
        dead_letter_to(&mut arguments, &queue.name);
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
