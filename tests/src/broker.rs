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
use std::collections::BTreeMap;
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

    /// The body's `event_type`; empty for a message that is not an event (a test's poison).
    pub fn event_type(&self) -> String {
        self.field("event_type")
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
                Ok(Some(message)) => {
                    let delivery = &message.delivery;
                    messages.push(Tapped {
                        routing_key: delivery.routing_key.to_string(),
                        properties: delivery.properties.clone(),
                        body: delivery.data.clone(),
                    });
                }
                Ok(None) => break Ok(messages),
                Err(error) => break Err(format!("queue {queue} cannot be read: {error}")),
            }
        };
        let _ = channel.close(200, "peeked".into()).await;
        outcome
    }

    /// Ready and unacknowledged messages of every queue whose name starts with `prefix`,
    /// from `rabbitmqctl` (AMQP cannot see the messages a consumer holds unacked).
    /// `nodes` names the RabbitMQ nodes to ask (`rabbitmqctl -n`, comma-separated; the first
    /// that answers), when not the local one.
    pub async fn queue_counts(
        prefix: &str,
        nodes: Option<&str>,
    ) -> Result<BTreeMap<String, (u64, u64)>, String> {
        let nodes: Vec<Option<&str>> = match nodes {
            Some(list) => list.split(',').map(|node| Some(node.trim())).collect(),
            None => vec![None],
        };
        let mut failure = String::new();
        for node in nodes {
            match list_queues(node).await {
                Ok(stdout) => return parse_queue_counts(&stdout, prefix),
                Err(error) => failure = error,
            }
        }
        Err(failure)
    }
}

/// `rabbitmqctl list_queues` with the ready and unacknowledged counts, on `node`.
async fn list_queues(node: Option<&str>) -> Result<String, String> {
    let mut command = tokio::process::Command::new(rabbitmqctl());
    if let Some(node) = node {
        command.args(["-n", node]);
    }
    let output = command
        .args([
            "-q",
            "list_queues",
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "--no-table-headers",
        ])
        .output()
        .await
        .map_err(|error| format!("rabbitmqctl does not run: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "rabbitmqctl list_queues failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The counts of the queues whose name starts with `prefix`.
fn parse_queue_counts(stdout: &str, prefix: &str) -> Result<BTreeMap<String, (u64, u64)>, String> {
    let mut counts = BTreeMap::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, ready, unacked] = fields[..] else {
            return Err(format!("rabbitmqctl printed {line:?}"));
        };
        if !name.starts_with(prefix) {
            continue;
        }
        let number = |text: &str| {
            text.trim()
                .parse::<u64>()
                .map_err(|_| format!("rabbitmqctl printed {line:?}"))
        };
        counts.insert(name.to_owned(), (number(ready)?, number(unacked)?));
    }
    Ok(counts)
}

/// The `rabbitmqctl` of the test's RabbitMQ (`TEST_RABBITMQCTL` overrides it).
fn rabbitmqctl() -> String {
    std::env::var("TEST_RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".into())
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
    // And any other queue of the stack, e.g. retry queues of delays a test chose.
    if let Ok(others) = TestBroker::queue_counts(&format!("{}.", topology.exchange), None).await {
        queues.extend(others.into_keys());
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
    /// Publishes an event as its publisher in CONTRACT §4 would: the common fields, then
    /// `fields`; the metadata as AMQP properties. Returns the new event's id.
    pub async fn publish_event(&self, event_type: &str, fields: Value) -> String {
        let spec = crate::contract::event(event_type);
        let event_id = uuid::Uuid::new_v4().to_string();
        let mut body = serde_json::json!({
            "event_id": event_id,
            "event_type": event_type,
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        });
        let order_id = fields["order_id"].as_str().unwrap_or_default().to_owned();
        for (name, value) in fields.as_object().expect("fields are an object") {
            body[name] = value.clone();
        }
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(event_id.as_str().into())
            .with_type(event_type.into())
            .with_correlation_id(order_id.as_str().into())
            .with_app_id(crate::contract::app_id(spec.publisher).into())
            .with_timestamp(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("after 1970")
                    .as_secs(),
            );
        self.publish(
            spec.routing_key,
            &serde_json::to_vec(&body).expect("JSON"),
            properties,
        )
        .await;
        event_id
    }

    /// Publishes a message no service can handle, with a fresh `message_id` so the
    /// invariants can tell it from any other dead letter; returns the id.
    pub async fn publish_poison(&self, routing_key: &str, body: &[u8]) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(id.as_str().into());
        self.publish(routing_key, body, properties).await;
        id
    }
}
