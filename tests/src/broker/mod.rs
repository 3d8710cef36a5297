//! The test's own RabbitMQ connection: a tap queue bound to every routing key records each
//! message the services publish; messages can be republished (duplicates) or injected
//! (poison); queue depths can be read.
//!
//! The tap has two views. [`TestBroker::deliveries`] / [`TestBroker::deliveries_of`] are
//! raw: every copy that crossed the exchange, so a relay's resend of an event (same
//! `event_id`) shows twice — count resends there. [`TestBroker::events_of`] is distinct:
//! each `event_id` once, for counting events (a second refund, a second cancellation) when
//! at-least-once publishing may legitimately send one twice.
//!
//! # Layout
//! - this module: the connection, the tap, reading queues;
//! - `publish`: duplicates, contract-shaped events, poison;
//! - `metadata`: the §4 metadata of every message the tap saw;
//! - `rabbitmqctl`: ready and unacked counts of every queue;
//! - `cleanup`: [`delete_topology`] once a test ends.

mod cleanup;
mod metadata;
mod publish;
mod rabbitmqctl;

pub use cleanup::delete_topology;
pub use metadata::metadata_violations;

use common::amqp::topology::Topology;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
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
    fn of(delivery: &lapin::message::Delivery) -> Self {
        Self {
            routing_key: delivery.routing_key.to_string(),
            properties: delivery.properties.clone(),
            body: delivery.data.clone(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("every published event is JSON")
    }

    /// The body's `event_type`; empty for a message that is not an event (a test's poison).
    pub fn event_type(&self) -> String {
        self.field("event_type")
    }

    /// The body's `event_id`; empty for a message that is not an event.
    pub fn event_id(&self) -> String {
        self.field("event_id")
    }

    /// The body's `order_id`; empty for a message that is not an event.
    pub fn order_id(&self) -> String {
        self.field("order_id")
    }

    fn field(&self, name: &str) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|body| body[name].as_str().map(str::to_owned))
            .unwrap_or_default()
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

    /// Every message that reached the tap so far, each copy as it crossed the exchange: an
    /// event the relay sent twice is here twice (with one `event_id`), and so are the
    /// copies a test republished. The raw view; [`TestBroker::events_of`] is the distinct one.
    pub async fn deliveries(&self) -> Vec<Tapped> {
        let channel = self.channel().await;
        loop {
            let message = channel
                .basic_get(self.tap.as_str().into(), BasicGetOptions::default())
                .await
                .expect("the tap can be read");
            let Some(message) = message else { break };
            let delivery = &message.delivery;
            self.seen
                .lock()
                .expect("not poisoned")
                .push(Tapped::of(delivery));
            delivery.ack(BasicAckOptions::default()).await.expect("ack");
        }
        self.seen.lock().expect("not poisoned").clone()
    }

    /// Every copy of one type's events that reached the tap: what counts resends.
    pub async fn deliveries_of(&self, event_type: &str) -> Vec<Tapped> {
        self.deliveries()
            .await
            .into_iter()
            .filter(|e| e.event_type() == event_type)
            .collect()
    }

    /// The distinct events of one type seen so far, each once (its first copy), by
    /// `event_id`: publishing is at-least-once, so an event may cross the exchange twice
    /// (its confirm took longer than the relay's grace, and the relay sent it again); both
    /// copies carry its `event_id`, and the consumers' inbox applies it once. So this view
    /// counts events, and can never see a resend: tests that count copies use
    /// [`TestBroker::deliveries_of`].
    pub async fn events_of(&self, event_type: &str) -> Vec<Tapped> {
        let mut seen = std::collections::HashSet::new();
        self.deliveries_of(event_type)
            .await
            .into_iter()
            .filter(|e| seen.insert(e.event_id()))
            .collect()
    }

    /// Messages ready in a queue (not counting ones a consumer holds); panics if the queue
    /// does not exist.
    pub async fn depth(&self, queue: &str) -> u32 {
        self.ready(queue)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Messages ready in a queue, or why they cannot be counted (a missing queue is an
    /// error, not an empty queue).
    pub async fn ready(&self, queue: &str) -> Result<u32, String> {
        // A channel of its own: a passive declare of a missing queue closes its channel.
        let channel = self.side_channel().await?;
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
        declared
            .map(|q| q.message_count())
            .map_err(|error| format!("queue {queue} cannot be inspected: {error}"))
    }

    /// A fresh channel on the test's connection, for operations that may close it.
    async fn side_channel(&self) -> Result<Channel, String> {
        drop(self.channel().await);
        let link = self.link.lock().await;
        let (connection, _) = link.as_ref().expect("connected above");
        connection
            .create_channel()
            .await
            .map_err(|error| format!("no channel: {error}"))
    }

    /// Every message in a queue, left in place: each is fetched without an ack, and
    /// closing the channel hands them all back to the queue in their order.
    pub async fn peek(&self, queue: &str) -> Result<Vec<Tapped>, String> {
        let channel = self.side_channel().await?;
        let mut messages = Vec::new();
        let outcome = loop {
            match channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: false })
                .await
            {
                Ok(Some(message)) => messages.push(Tapped::of(&message.delivery)),
                Ok(None) => break Ok(messages),
                Err(error) => break Err(format!("queue {queue} cannot be read: {error}")),
            }
        };
        let _ = channel.close(200, "peeked".into()).await;
        outcome
    }
}

/// Connects to the first node of a comma-separated list that answers; an `amqps://` node
/// with the test CA's files in its query (see [`tls_config`]) over TLS.
pub async fn connect_any(list: &str) -> lapin::Result<Connection> {
    let mut last = None;
    for url in list.split(',') {
        let url = url.trim();
        let connecting = Connection::connect_with_config(
            url,
            ConnectionProperties::default(),
            tls_config(url),
            lapin::runtime::default_runtime()?,
        );
        match connecting.await {
            Ok(connection) => return Ok(connection),
            Err(error) => last = Some(error),
        }
    }
    Err(last.expect("at least one URL"))
}

/// The test's own reading of a node URL's `cacertfile`, `certfile` and `keyfile` (the
/// services read them with `common`; the test does not lean on the code under test).
fn tls_config(url: &str) -> lapin::tcp::OwnedTLSConfig {
    let mut config = lapin::tcp::OwnedTLSConfig::default();
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return config;
    };
    let param = |name: &str| {
        parsed
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, path)| std::fs::read(&*path).expect("a TLS file of the test"))
    };
    config.cert_chain = param("cacertfile").map(|pem| String::from_utf8_lossy(&pem).into_owned());
    if let (Some(pem), Some(key)) = (param("certfile"), param("keyfile")) {
        config.identity = Some(lapin::tcp::OwnedIdentity::PKCS8 { pem, key });
    }
    config
}
