//! Names and shape of everything on the broker, derived from the exchange name so that two
//! stacks with different exchanges never see each other's messages.
//!
//! For each service `s`: a durable queue `<exchange>.<s>` bound to the events `s` consumes,
//! its dead-letter queue `<exchange>.<s>.dlq`, and one delay queue per retry step,
//! `<exchange>.<s>.retry.<ms>ms`, whose messages expire back into `<exchange>.<s>`.
//! Besides, `<exchange>.audit` gets a copy of every event, for order-service's saga view.
//!
//! Queues are classic (one node) or quorum (Raft-replicated across a cluster, CONTRACT §11),
//! as [`QueueType`] says. A queue cannot change type in place: RabbitMQ refuses the
//! redeclaration, so switching an existing deployment means recreating its queues (README).

use crate::service::Service;
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
pub const AUDIT_MAX_LENGTH: i64 = 100_000;

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

    /// Every event on the exchange, for order-service's saga view (`GET /api/orders/{id}/saga`).
    pub fn audit_queue(&self) -> String {
        format!("{}.audit", self.exchange)
    }

    pub fn retry_queue(&self, service: Service, delay: Duration) -> String {
        format!("{}.retry.{}ms", self.queue(service), delay.as_millis())
    }

    /// Declares the exchange and every service's queue, bindings and dead-letter queue, so
    /// no event is dropped because its consumer has not started yet, plus `own` service's
    /// retry queues. Declaring is idempotent; replicas and restarts repeat it harmlessly.
    pub async fn declare(&self, channel: &Channel, own: Service) -> lapin::Result<()> {
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
            for key in service.subscriptions() {
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
        channel
            .queue_bind(
                self.audit_queue().as_str().into(),
                self.exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        for delay in &self.retry_delays {
            channel
                .queue_declare(
                    self.retry_queue(own, *delay).as_str().into(),
                    durable,
                    self.retry_queue_arguments(own, *delay),
                )
                .await?;
        }
        Ok(())
    }

    /// A service's queue. Quorum: a message delivered [`DELIVERY_LIMIT`] times without an
    /// ack goes to the service's dead-letter queue, at least once.
    pub fn queue_arguments(&self, service: Service) -> FieldTable {
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
    pub fn dead_letter_queue_arguments(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        if self.queue_type == QueueType::Quorum {
            quorum(&mut arguments);
        }
        arguments
    }

    /// The audit copy of every event is bounded: when order-service is away long enough for
    /// it to fill, the oldest copies go first (the saga itself never depends on it).
    pub fn audit_queue_arguments(&self) -> FieldTable {
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
    pub fn retry_queue_arguments(&self, service: Service, delay: Duration) -> FieldTable {
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
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_exchange() {
        let topology = Topology {
            exchange: "orders".into(),
            retry_delays: vec![Duration::from_secs(1)],
            queue_type: QueueType::Classic,
        };
        assert_eq!(topology.queue(Service::Inventory), "orders.inventory");
        assert_eq!(
            topology.dead_letter_queue(Service::Payment),
            "orders.payment.dlq"
        );
        assert_eq!(
            topology.retry_queue(Service::Order, Duration::from_secs(1)),
            "orders.order.retry.1000ms"
        );
    }

    /// What RabbitMQ compares on every redeclaration: a classic deployment must keep
    /// exactly the arguments it always had, or its services could not start.
    #[test]
    fn classic_queues_keep_their_arguments_and_quorum_ones_replicate() {
        let mut topology = Topology {
            exchange: "orders".into(),
            retry_delays: vec![Duration::from_secs(1)],
            queue_type: QueueType::Classic,
        };
        let second = Duration::from_secs(1);
        assert!(topology.queue_arguments(Service::Order).inner().is_empty());
        assert!(topology.dead_letter_queue_arguments().inner().is_empty());
        let keys = |table: FieldTable| {
            table
                .inner()
                .keys()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(topology.retry_queue_arguments(Service::Order, second)),
            [
                "x-dead-letter-exchange",
                "x-dead-letter-routing-key",
                "x-message-ttl"
            ]
        );

        topology.queue_type = QueueType::Quorum;
        let queue = topology.queue_arguments(Service::Order);
        assert_eq!(
            queue.inner().get("x-queue-type"),
            Some(&AMQPValue::LongString("quorum".into()))
        );
        assert_eq!(
            queue.inner().get("x-dead-letter-routing-key"),
            Some(&AMQPValue::LongString("orders.order.dlq".into()))
        );
        assert_eq!(
            queue.inner().get("x-delivery-limit"),
            Some(&AMQPValue::LongLongInt(DELIVERY_LIMIT))
        );
        assert_eq!(
            keys(topology.dead_letter_queue_arguments()),
            ["x-queue-type"],
            "a delivery limit on a dead-letter queue would drop what operators peek at"
        );
        let retry = topology.retry_queue_arguments(Service::Order, second);
        assert_eq!(
            retry.inner().get("x-dead-letter-strategy"),
            Some(&AMQPValue::LongString("at-least-once".into()))
        );
        assert_eq!(
            retry.inner().get("x-dead-letter-routing-key"),
            Some(&AMQPValue::LongString("orders.order".into()))
        );
    }

    #[test]
    fn queue_types_parse() {
        assert_eq!("quorum".parse(), Ok(QueueType::Quorum));
        assert_eq!("Classic".parse(), Ok(QueueType::Classic));
        assert!("mirrored".parse::<QueueType>().is_err());
    }
}
