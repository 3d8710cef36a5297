//! Edit and replay (CONTRACT §16): a dead letter whose content was the problem goes back
//! to its queue with the body an operator corrected — same message id and properties, so
//! the consumer's inbox still handles it once — marked as edited and by whom.

use super::{DeadLetter, depth, give_back, id_of, replay_headers};
use crate::amqp::broker::Link;
use crate::amqp::publish::{Message, PublishError};
use crate::amqp::topology::ConsumerQueue;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::types::{AMQPValue, FieldTable};

/// Who edited a replayed message (the operator log's actor).
pub const EDITED_BY: &str = "x-edited-by";
/// When it was edited (RFC 3339).
pub const EDITED_AT: &str = "x-edited-at";

/// Replaces the first dead letter in `queue`'s dead-letter queue whose `message_id` is
/// `message_id`: `body` goes to `queue` with the letter's properties, without its failure
/// headers and with [`EDITED_BY`] and [`EDITED_AT`], and once RabbitMQ confirms it the
/// letter is acked away. The others stay in order. Returns the letter replaced (its
/// original body with it), `None` when there was none.
pub async fn replace(
    link: &Link,
    queue: &ConsumerQueue,
    message_id: &str,
    body: &[u8],
    editor: &str,
) -> Result<Option<DeadLetter>, PublishError> {
    let dead_letters = &queue.dead_letters;
    let waiting = depth(link, dead_letters).await?;
    let channel = link.connection.create_channel().await?;
    let mut seen = 0;
    let mut replaced = None;
    while seen < waiting {
        let Some(message) = channel
            .basic_get(
                dead_letters.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await?
        else {
            break;
        };
        seen += 1;
        let delivery = &message.delivery;
        if replaced.is_some() || id_of(delivery) != Some(message_id) {
            continue;
        }
        let mut edited = FieldTable::default();
        edited.insert(EDITED_BY.into(), AMQPValue::LongString(editor.into()));
        let now = chrono::Utc::now().to_rfc3339();
        edited.insert(EDITED_AT.into(), AMQPValue::LongString(now.as_str().into()));
        let properties = delivery
            .properties
            .clone()
            .with_headers(replay_headers(delivery, edited));
        link.publisher
            .publish(&[Message {
                exchange: "",
                routing_key: &queue.name,
                payload: body,
                properties,
            }])
            .await?;
        delivery.ack(BasicAckOptions::default()).await?;
        replaced = Some(DeadLetter::of(delivery));
    }
    let kept = seen - u32::from(replaced.is_some());
    give_back(link, channel, dead_letters, kept).await?;
    if replaced.is_some() {
        tracing::warn!(
            message_id,
            editor,
            service = queue.owner,
            "replayed an edited dead letter"
        );
    }
    Ok(replaced)
}
