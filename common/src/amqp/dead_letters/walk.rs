//! Walks through a dead-letter queue: every message now in it is fetched unacknowledged,
//! the ones picked are replayed or discarded, and the rest go back in their order — one
//! message by id, or a whole group of one cause.

use super::{DeadLetter, depth, give_back, send_back};
use crate::amqp::broker::Link;
use crate::amqp::publish::PublishError;
use crate::amqp::topology::ConsumerQueue;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::types::FieldTable;

/// What to do with the dead letters a walk picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Replay,
    Discard,
}

/// Sends the dead letters whose `message_id` is `message_id` back to `queue` (as
/// [`replay`] does), leaving the others where they were, in order. Returns how many were
/// moved.
pub async fn replay_one(
    link: &Link,
    queue: &ConsumerQueue,
    message_id: &str,
) -> Result<u32, PublishError> {
    let replayed = replay_where(link, queue, |letter| {
        letter.message_id.as_deref() == Some(message_id)
    })
    .await?;
    tracing::info!(
        replayed,
        message_id,
        service = queue.owner,
        "replayed a dead letter"
    );
    Ok(replayed)
}

/// Removes the dead letters whose `message_id` is `message_id` (a poison message an
/// operator has dealt with) and leaves the others where they were, in order. Returns how
/// many were removed.
pub async fn discard(
    link: &Link,
    queue: &ConsumerQueue,
    message_id: &str,
) -> Result<u32, PublishError> {
    discard_where(link, queue, |letter| {
        letter.message_id.as_deref() == Some(message_id)
    })
    .await
}

/// Sends the dead letters now in `queue`'s dead-letter queue that `picks` back to `queue`
/// (as [`replay`] does), leaving the others in order; one that arrives meanwhile waits for
/// the next action. Returns how many were moved.
pub async fn replay_where(
    link: &Link,
    queue: &ConsumerQueue,
    picks: impl Fn(&DeadLetter) -> bool,
) -> Result<u32, PublishError> {
    walk(link, queue, picks, Action::Replay).await
}

/// Removes the dead letters now in `queue`'s dead-letter queue that `picks`, leaving the
/// others in order. Returns how many were removed.
pub async fn discard_where(
    link: &Link,
    queue: &ConsumerQueue,
    picks: impl Fn(&DeadLetter) -> bool,
) -> Result<u32, PublishError> {
    let discarded = walk(link, queue, picks, Action::Discard).await?;
    tracing::warn!(discarded, service = queue.owner, "discarded dead letters");
    Ok(discarded)
}

/// Walks `queue`'s dead-letter queue: every message now in it is fetched unacknowledged,
/// the ones `picks` are replayed or acked away, and the rest are given back in their order.
async fn walk(
    link: &Link,
    queue: &ConsumerQueue,
    picks: impl Fn(&DeadLetter) -> bool,
    action: Action,
) -> Result<u32, PublishError> {
    let dead_letters = &queue.dead_letters;
    let waiting = depth(link, dead_letters).await?;
    let channel = link.connection.create_channel().await?;
    let mut seen = 0;
    let mut matched = 0;
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
        if !picks(&DeadLetter::of(delivery)) {
            continue;
        }
        match action {
            Action::Replay => send_back(link, &queue.name, delivery, FieldTable::default()).await?,
            Action::Discard => {
                delivery.ack(BasicAckOptions::default()).await?;
            }
        }
        matched += 1;
    }
    give_back(link, channel, dead_letters, seen - matched).await?;
    Ok(matched)
}
