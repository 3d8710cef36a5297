//! Dead-letter queues: where a message goes when it cannot be handled, and how an operator
//! looks at them and sends them back.
//!
//! A dead-lettered message keeps its body and properties and gains headers: `x-error` (why),
//! `x-attempts` (how many times it was tried), `x-failed-at` (RFC 3339) and
//! `x-original-routing-key`. Nothing ever removes messages from a dead-letter queue except
//! a replay or an operator's discard of one message.

use super::broker::{Broker, Link};
use super::consumer::{RETRY_HEADER, header_string, header_u32};
use super::publish::{self, PublishError};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde::Serialize;

/// Header keeping the routing key a message was first published with; delay queues
/// re-route a retried message by queue name, so its own key no longer says where it goes.
pub const ORIGINAL_ROUTING_KEY: &str = "x-original-routing-key";

/// Publishes a copy of `delivery` to the service's dead-letter queue and waits for the
/// confirm; the caller acks the original afterwards.
pub async fn send(
    broker: &Broker,
    link: &Link,
    delivery: &Delivery,
    reason: &str,
    attempts: u32,
) -> Result<(), PublishError> {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert("x-error".into(), AMQPValue::LongString(reason.into()));
    headers.insert("x-attempts".into(), AMQPValue::LongUInt(attempts));
    headers.insert(
        "x-failed-at".into(),
        AMQPValue::LongString(chrono::Utc::now().to_rfc3339().into()),
    );
    keep_original_routing_key(&mut headers, delivery);
    let properties = delivery.properties.clone().with_headers(headers);
    let queue = broker.topology().dead_letter_queue(broker.service());
    let confirm = publish::send(&link.publisher, "", &queue, &delivery.data, properties).await?;
    publish::confirmed([confirm]).await
}

/// Records the routing key `delivery` came with, unless an earlier hop already did.
pub fn keep_original_routing_key(headers: &mut FieldTable, delivery: &Delivery) {
    if !headers.contains_key(ORIGINAL_ROUTING_KEY) {
        headers.insert(
            ORIGINAL_ROUTING_KEY.into(),
            AMQPValue::LongString(delivery.routing_key.as_str().into()),
        );
    }
}

/// One dead-lettered message as the admin endpoint shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub message_id: Option<String>,
    pub event_type: Option<String>,
    pub routing_key: Option<String>,
    pub error: Option<String>,
    pub attempts: u32,
    pub failed_at: Option<String>,
    /// The body as text (lossy if it is not UTF-8).
    pub body: String,
}

/// How many messages are ready in `queue`.
pub async fn depth(link: &Link, queue: &str) -> lapin::Result<u32> {
    let channel = link.connection.create_channel().await?;
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let _ = channel.close(200, "done".into()).await;
    Ok(declared.message_count())
}

/// Reads up to `limit` messages without removing them: they are fetched unacknowledged on a
/// channel of their own, and closing that channel returns them to the queue in order.
pub async fn peek(broker: &Broker, link: &Link, limit: usize) -> lapin::Result<Vec<DeadLetter>> {
    let queue = broker.topology().dead_letter_queue(broker.service());
    let channel = link.connection.create_channel().await?;
    let mut letters = Vec::new();
    while letters.len() < limit {
        let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        let delivery = &message.delivery;
        let headers = delivery.properties.headers().as_ref();
        letters.push(DeadLetter {
            message_id: delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.to_string()),
            event_type: delivery.properties.kind().as_ref().map(|t| t.to_string()),
            routing_key: header_string(headers, ORIGINAL_ROUTING_KEY),
            error: header_string(headers, "x-error"),
            attempts: header_u32(headers, "x-attempts"),
            failed_at: header_string(headers, "x-failed-at"),
            body: String::from_utf8_lossy(&delivery.data).into_owned(),
        });
    }
    let _ = channel.close(200, "peek done".into()).await;
    Ok(letters)
}

/// Moves the messages now in the dead-letter queue back to the service's queue for another
/// try, with their retry count reset. Messages that fail again land in the dead-letter
/// queue behind them, so a replay always ends. Returns how many were moved.
pub async fn replay(broker: &Broker, link: &Link) -> Result<u32, PublishError> {
    let topology = broker.topology();
    let dead_letters = topology.dead_letter_queue(broker.service());
    let queue = topology.queue(broker.service());
    let waiting = depth(link, &dead_letters).await?;
    let channel = link.connection.create_channel().await?;
    let mut moved = 0;
    while moved < waiting {
        let Some(message) = channel
            .basic_get(
                dead_letters.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await?
        else {
            break;
        };
        let delivery = &message.delivery;
        let mut headers = FieldTable::default();
        for (key, value) in delivery.properties.headers().iter().flatten() {
            if !matches!(
                key.as_str(),
                RETRY_HEADER | "x-error" | "x-attempts" | "x-failed-at"
            ) {
                headers.insert(key.clone(), value.clone());
            }
        }
        let properties = delivery.properties.clone().with_headers(headers);
        let confirm =
            publish::send(&link.publisher, "", &queue, &delivery.data, properties).await?;
        publish::confirmed([confirm]).await?;
        delivery.ack(BasicAckOptions::default()).await?;
        moved += 1;
    }
    let _ = channel.close(200, "replay done".into()).await;
    tracing::info!(moved, %dead_letters, "replayed dead letters");
    Ok(moved)
}

/// Removes the dead letters whose `message_id` is `message_id` (a poison message an
/// operator has dealt with) and leaves the others where they were: every message is fetched
/// unacknowledged, the matches are acked, and closing the channel returns the rest to the
/// queue in order. Returns how many were removed.
pub async fn discard(broker: &Broker, link: &Link, message_id: &str) -> lapin::Result<u32> {
    let queue = broker.topology().dead_letter_queue(broker.service());
    let waiting = depth(link, &queue).await?;
    let channel = link.connection.create_channel().await?;
    let mut seen = 0;
    let mut discarded = 0;
    while seen < waiting {
        let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        seen += 1;
        let delivery = &message.delivery;
        let id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str());
        if id == Some(message_id) {
            delivery.ack(BasicAckOptions::default()).await?;
            discarded += 1;
        }
    }
    let _ = channel.close(200, "discard done".into()).await;
    tracing::warn!(discarded, message_id, %queue, "discarded dead letters");
    Ok(discarded)
}
