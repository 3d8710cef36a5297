//! Dead-letter queues: where a message goes when it cannot be handled, and how an operator
//! looks at them and sends them back.
//!
//! A dead-lettered message keeps its body and properties and gains headers
//! ([`super::headers`]): `x-error` (why), `x-attempts` (how many times it was tried),
//! `x-first-failed-at` and `x-failed-at` (RFC 3339: its first and its last failure) and
//! `x-original-routing-key`. Nothing ever removes
//! messages from a dead-letter queue except a replay or an operator's discard.
//!
//! Every function here takes the [`ConsumerQueue`] it works on: a service manages its own
//! (`/admin/dlq…`), and a console may manage every queue of the layout over its own broker
//! link, since every queue is on the one exchange's broker. Here: sending a letter, peeking,
//! replaying all; `walk`: replaying or discarding the letters a predicate picks (one id, a
//! group of one cause); `read_all`: every letter at once, for the console's groups;
//! `edit`: replacing a letter with a corrected body (CONTRACT §16).

mod edit;
mod read_all;
mod walk;

pub use edit::replace;
pub use read_all::{Held, read_all, read_and_hold};
pub use walk::{discard, discard_where, replay_one, replay_where};

use super::broker::{Broker, Link};
use super::headers::{
    ATTEMPTS, ERROR, FAILED_AT, FAILURE_HEADERS, FIRST_FAILED_AT, ORIGINAL_ROUTING_KEY,
    header_string, header_u32, keep_first_failure, keep_original_routing_key,
};
use super::publish::{Message, PublishError};
use super::topology::ConsumerQueue;
use lapin::message::Delivery;
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use serde::Serialize;
use std::time::{Duration, Instant};

/// How long a peek or a walk waits for the letters it fetched to be back in the queue.
const RETURN_WAIT: Duration = Duration::from_secs(2);

/// Publishes a copy of `delivery` to the service's dead-letter queue and waits for the
/// confirm; the caller acks the original afterwards.
pub(crate) async fn send(
    broker: &Broker,
    link: &Link,
    delivery: &Delivery,
    reason: &str,
    attempts: u32,
) -> Result<(), PublishError> {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    let now = chrono::Utc::now().to_rfc3339();
    headers.insert(ERROR.into(), AMQPValue::LongString(reason.into()));
    headers.insert(ATTEMPTS.into(), AMQPValue::LongUInt(attempts));
    headers.insert(FAILED_AT.into(), AMQPValue::LongString(now.as_str().into()));
    keep_first_failure(&mut headers, &now);
    keep_original_routing_key(&mut headers, delivery);
    let properties = delivery.properties.clone().with_headers(headers);
    let queue = &broker.own_queue().dead_letters;
    link.publisher
        .publish(&[copy_to(queue, delivery, properties)])
        .await
}

/// `delivery`'s body with `properties`, straight to `queue`.
fn copy_to<'a>(queue: &'a str, delivery: &'a Delivery, properties: BasicProperties) -> Message<'a> {
    Message {
        exchange: "",
        routing_key: queue,
        payload: &delivery.data,
        properties,
    }
}

/// One dead-lettered message as the admin endpoints show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub message_id: Option<String>,
    pub event_type: Option<String>,
    pub routing_key: Option<String>,
    pub error: Option<String>,
    pub attempts: u32,
    /// When it first failed (RFC 3339).
    pub first_failed_at: Option<String>,
    /// When it failed for the last time and was dead-lettered (RFC 3339).
    pub failed_at: Option<String>,
    /// The body as text (lossy if it is not UTF-8).
    pub body: String,
}

impl DeadLetter {
    fn of(delivery: &Delivery) -> Self {
        let headers = delivery.properties.headers().as_ref();
        Self {
            message_id: id_of(delivery).map(str::to_owned),
            event_type: delivery.properties.kind().as_ref().map(|t| t.to_string()),
            routing_key: header_string(headers, ORIGINAL_ROUTING_KEY),
            error: header_string(headers, ERROR),
            attempts: header_u32(headers, ATTEMPTS),
            first_failed_at: header_string(headers, FIRST_FAILED_AT),
            failed_at: header_string(headers, FAILED_AT),
            body: String::from_utf8_lossy(&delivery.data).into_owned(),
        }
    }
}

fn id_of(delivery: &Delivery) -> Option<&str> {
    delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str())
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

/// Closes `channel`, which returns the `returned` messages it holds unacknowledged to
/// `queue` in their order, and waits (up to [`RETURN_WAIT`]) until they are ready there
/// again: a quorum queue takes them back asynchronously, after the close, and the next
/// request (a replay right after a look) must find them.
async fn give_back(link: &Link, channel: Channel, queue: &str, returned: u32) -> lapin::Result<()> {
    let _ = channel.close(200, "done".into()).await;
    let deadline = Instant::now() + RETURN_WAIT;
    while returned > 0 && depth(link, queue).await? < returned && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Reads up to `limit` of `queue`'s dead letters without removing them: they are fetched
/// unacknowledged on a channel of their own and given back in order before it returns.
pub async fn peek(
    link: &Link,
    queue: &ConsumerQueue,
    limit: usize,
) -> lapin::Result<Vec<DeadLetter>> {
    let queue = &queue.dead_letters;
    let channel = link.connection.create_channel().await?;
    let mut letters = Vec::new();
    while letters.len() < limit {
        let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        letters.push(DeadLetter::of(&message.delivery));
    }
    give_back(link, channel, queue, letters.len() as u32).await?;
    Ok(letters)
}

/// `delivery`'s headers without the failure headers, plus `extra`.
fn replay_headers(delivery: &Delivery, extra: FieldTable) -> FieldTable {
    let mut headers = FieldTable::default();
    for (key, value) in delivery.properties.headers().iter().flatten() {
        if !FAILURE_HEADERS.contains(&key.as_str()) {
            headers.insert(key.clone(), value.clone());
        }
    }
    for (key, value) in &extra {
        headers.insert(key.clone(), value.clone());
    }
    headers
}

/// Moves the messages now in `queue`'s dead-letter queue back to it for another try, with
/// their retry count reset. Messages that fail again land in the dead-letter queue behind
/// them, so a replay always ends. Returns how many were moved.
pub async fn replay(link: &Link, queue: &ConsumerQueue) -> Result<u32, PublishError> {
    let moved = replay_where(link, queue, |_| true).await?;
    tracing::info!(moved, dead_letters = %queue.dead_letters, "replayed dead letters");
    Ok(moved)
}
