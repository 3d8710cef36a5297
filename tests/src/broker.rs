//! The test's own RabbitMQ connection: a tap queue bound to every routing key records each
//! event the services publish; messages can be republished (duplicates) or injected
//! (poison); queue depths can be read.

use common::Service;
use common::amqp::topology::Topology;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;
use std::sync::Mutex;

/// One event seen on the exchange.
#[derive(Debug, Clone)]
pub struct Tapped {
    pub routing_key: String,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
}

impl Tapped {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("every published event is JSON")
    }

    pub fn event_type(&self) -> String {
        self.json()["event_type"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn order_id(&self) -> String {
        self.json()["order_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

pub struct TestBroker {
    connection: Connection,
    channel: Channel,
    exchange: String,
    tap: String,
    seen: Mutex<Vec<Tapped>>,
}

impl TestBroker {
    /// Connects, declares the exchange and binds the tap queue, so every event published
    /// from now on is recorded.
    pub async fn connect(topology: &Topology) -> Self {
        let connection =
            Connection::connect(&crate::stack::amqp_url(), ConnectionProperties::default())
                .await
                .expect("RabbitMQ is reachable");
        let channel = connection.create_channel().await.expect("a channel");
        channel
            .exchange_declare(
                topology.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("the exchange can be declared");
        let tap = format!("{}.tap", topology.exchange);
        channel
            .queue_declare(
                tap.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("the tap queue can be declared");
        channel
            .queue_bind(
                tap.as_str().into(),
                topology.exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("the tap queue can be bound");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms can be enabled");
        Self {
            connection,
            channel,
            exchange: topology.exchange.clone(),
            tap,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Every event published so far (that reached the tap).
    pub async fn events(&self) -> Vec<Tapped> {
        loop {
            let message = self
                .channel
                .basic_get(self.tap.as_str().into(), BasicGetOptions::default())
                .await
                .expect("the tap can be read");
            let Some(message) = message else { break };
            let delivery = &message.delivery;
            self.seen.lock().expect("not poisoned").push(Tapped {
                routing_key: delivery.routing_key.to_string(),
                properties: delivery.properties.clone(),
                body: delivery.data.clone(),
            });
            delivery.ack(BasicAckOptions::default()).await.expect("ack");
        }
        self.seen.lock().expect("not poisoned").clone()
    }

    /// The events of one type seen so far.
    pub async fn events_of(&self, event_type: &str) -> Vec<Tapped> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.event_type() == event_type)
            .collect()
    }

    /// Publishes a message to the stack's exchange and waits for the confirm.
    pub async fn publish(&self, routing_key: &str, body: &[u8], properties: BasicProperties) {
        let confirm = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack(), "RabbitMQ refused the message");
    }

    /// Sends an event again, exactly as it was first published (same `message_id`).
    pub async fn republish(&self, event: &Tapped) {
        self.publish(&event.routing_key, &event.body, event.properties.clone())
            .await;
    }

    /// Messages ready in a queue (not counting ones a consumer holds).
    pub async fn depth(&self, queue: &str) -> u32 {
        let channel = self.connection.create_channel().await.expect("a channel");
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        let _ = channel.close(200, "done".into()).await;
        declared.map(|q| q.message_count()).unwrap_or(0)
    }
}

/// Deletes every queue of the stack and its exchange.
pub async fn delete_topology(topology: &Topology) {
    let Ok(connection) =
        Connection::connect(&crate::stack::amqp_url(), ConnectionProperties::default()).await
    else {
        return;
    };
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    let mut queues = vec![format!("{}.tap", topology.exchange)];
    for service in Service::ALL {
        queues.push(topology.queue(service));
        queues.push(topology.dead_letter_queue(service));
        for delay in &topology.retry_delays {
            queues.push(topology.retry_queue(service, *delay));
        }
    }
    for queue in queues {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = channel
        .exchange_delete(
            topology.exchange.as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await;
    let _ = connection.close(200, "cleaned up".into()).await;
}
