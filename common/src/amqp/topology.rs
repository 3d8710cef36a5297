//! Names and shape of everything on the broker, derived from the exchange name so that two
//! stacks with different exchanges never see each other's messages.
//!
//! For each service `s`: a durable queue `<exchange>.<s>` bound to the events `s` consumes,
//! its dead-letter queue `<exchange>.<s>.dlq`, and one delay queue per retry step,
//! `<exchange>.<s>.retry.<ms>ms`, whose messages expire back into `<exchange>.<s>`.
//! Besides, `<exchange>.audit` gets a copy of every event, for order-service's saga view.

use crate::events::routing_key::*;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The four services of the saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Order,
    Inventory,
    Payment,
    Notification,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Order,
        Service::Inventory,
        Service::Payment,
        Service::Notification,
    ];

    /// `order`, `inventory`, …: in queue and database names.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Inventory => "inventory",
            Self::Payment => "payment",
            Self::Notification => "notification",
        }
    }

    /// `order-service`, …: the binary, the AMQP `app_id`, the log `service` field.
    pub fn name(self) -> &'static str {
        match self {
            Self::Order => "order-service",
            Self::Inventory => "inventory-service",
            Self::Payment => "payment-service",
            Self::Notification => "notification-service",
        }
    }

    pub fn default_http_addr(self) -> SocketAddr {
        let port = match self {
            Self::Order => 8000,
            Self::Inventory => 8001,
            Self::Payment => 8002,
            Self::Notification => 8003,
        };
        (Ipv4Addr::UNSPECIFIED, port).into()
    }

    /// The routing keys this service's queue is bound to (CONTRACT §4).
    pub fn subscriptions(self) -> &'static [&'static str] {
        match self {
            Self::Order => &[INVENTORY_UNAVAILABLE, PAYMENT_PROCESSED, PAYMENT_FAILED],
            Self::Inventory => &[ORDER_CREATED, ORDER_CANCELLED],
            Self::Payment => &[INVENTORY_RESERVED, ORDER_CANCELLED],
            Self::Notification => &[
                ORDER_CONFIRMED,
                ORDER_CANCELLED,
                PAYMENT_PROCESSED,
                PAYMENT_FAILED,
                PAYMENT_REFUNDED,
            ],
        }
    }
}

/// How many event copies the audit queue holds at most.
pub const AUDIT_MAX_LENGTH: i64 = 100_000;

/// The broker layout of one stack.
#[derive(Debug, Clone)]
pub struct Topology {
    pub exchange: String,
    /// Delay before each redelivery of a failing message; its length bounds the retries.
    pub retry_delays: Vec<Duration>,
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
                .queue_declare(queue.as_str().into(), durable, FieldTable::default())
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
                    FieldTable::default(),
                )
                .await?;
        }
        // The audit copy of every event is bounded: when order-service is away long enough
        // for it to fill, the oldest copies go first (the saga itself never depends on it).
        let mut audit = FieldTable::default();
        audit.insert(
            "x-max-length".into(),
            AMQPValue::LongLongInt(AUDIT_MAX_LENGTH),
        );
        audit.insert(
            "x-overflow".into(),
            AMQPValue::LongString("drop-head".into()),
        );
        channel
            .queue_declare(self.audit_queue().as_str().into(), durable, audit)
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
            let mut arguments = FieldTable::default();
            arguments.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(delay.as_millis() as i64),
            );
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString("".into()),
            );
            arguments.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(self.queue(own).into()),
            );
            channel
                .queue_declare(
                    self.retry_queue(own, *delay).as_str().into(),
                    durable,
                    arguments,
                )
                .await?;
        }
        Ok(())
    }
}

/// A short string from a name; AMQP limits them to 255 bytes, which our names respect.
pub fn short(text: &str) -> ShortString {
    text.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_exchange() {
        let topology = Topology {
            exchange: "orders".into(),
            retry_delays: vec![Duration::from_secs(1)],
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
}
