//! The test's own RabbitMQ connection: a tap queue bound to every routing key records each
//! event the services publish; messages can be republished (duplicates) or injected
//! (poison); queue depths can be read.

use common::Service;
use common::amqp::publish::OutgoingEvent;
use common::amqp::topology::Topology;
use common::events::{Envelope, Event};
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
    /// `AMQP_URL`: one node or several, separated by commas.
    url: String,
    exchange: String,
    tap: String,
    /// The live connection and confirm-mode channel; replaced after a broker restart.
    link: tokio::sync::Mutex<Option<(Connection, Channel)>>,
    seen: Mutex<Vec<Tapped>>,
}

impl TestBroker {
    /// Connects, declares the exchange and binds the tap queue, so every event published
    /// from now on is recorded.
    pub async fn connect(topology: &Topology, url: &str) -> Self {
        let broker = Self {
            url: url.to_owned(),
            exchange: topology.exchange.clone(),
            tap: format!("{}.tap", topology.exchange),
            link: tokio::sync::Mutex::new(None),
            seen: Mutex::new(Vec::new()),
        };
        broker.channel().await;
        broker
    }

    /// The channel, reconnecting (and re-declaring the tap) if RabbitMQ restarted; events
    /// published while it was down are not in the tap.
    async fn channel(&self) -> Channel {
        let mut link = self.link.lock().await;
        if let Some((connection, channel)) = link.as_ref()
            && connection.status().connected()
            && channel.status().connected()
        {
            return channel.clone();
        }
        let connection = connect_any(&self.url)
            .await
            .expect("a RabbitMQ node is reachable");
        let channel = connection.create_channel().await.expect("a channel");
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
            .await
            .expect("the exchange can be declared");
        channel
            .queue_declare(
                self.tap.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("the tap queue can be declared");
        channel
            .queue_bind(
                self.tap.as_str().into(),
                self.exchange.as_str().into(),
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
        *link = Some((connection, channel.clone()));
        channel
    }

    /// Every event published so far (that reached the tap).
    pub async fn events(&self) -> Vec<Tapped> {
        let channel = self.channel().await;
        loop {
            let message = channel
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
            .channel()
            .await
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
        // A channel of its own: a passive declare of a missing queue closes its channel.
        let connection_channel = self.channel().await;
        drop(connection_channel);
        let link = self.link.lock().await;
        let (connection, _) = link.as_ref().expect("connected above");
        let channel = connection.create_channel().await.expect("a channel");
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
pub async fn delete_topology(topology: &Topology, url: &str) {
    let Ok(connection) = connect_any(url).await else {
        return;
    };
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    let mut queues = vec![
        format!("{}.tap", topology.exchange),
        format!("{}.audit", topology.exchange),
    ];
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

/// Connects to the first node of a comma-separated list that answers.
pub async fn connect_any(list: &str) -> lapin::Result<Connection> {
    let mut last = None;
    for url in list.split(',') {
        match Connection::connect(url.trim(), ConnectionProperties::default()).await {
            Ok(connection) => return Ok(connection),
            Err(error) => last = Some(error),
        }
    }
    Err(last.expect("at least one URL"))
}

impl TestBroker {
    /// Publishes an event as `publisher` would, with the contract's properties.
    pub async fn publish_event(&self, event: Event, publisher: Service) -> Envelope {
        let envelope = Envelope::new(event);
        let outgoing = OutgoingEvent {
            event_id: envelope.event_id,
            event_type: envelope.event.name().to_owned(),
            routing_key: envelope.event.routing_key().to_owned(),
            order_id: envelope.event.order_id(),
            causation_id: None,
            occurred_at: envelope.timestamp,
            payload: envelope.to_json(),
            traceparent: None,
            tracestate: None,
        };
        self.publish(
            &outgoing.routing_key,
            &outgoing.payload,
            outgoing.properties(publisher),
        )
        .await;
        envelope
    }
}
