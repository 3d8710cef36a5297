//! Walks through a dead-letter queue: every message now in it is delivered unacknowledged
//! to one consumer (a prefetch of the queue's depth, so thousands stream instead of one
//! `basic.get` round trip each), the ones picked are replayed (in confirmed batches) or
//! discarded, and the rest go back in their order — one message by id, or a whole group of
//! one cause. A message that arrives meanwhile is not part of the walk.

use super::read_all::{DELIVERY_WAIT, MAX_READ};
use super::{DeadLetter, copy_to, depth, give_back, replay_headers};
use crate::amqp::broker::Link;
use crate::amqp::link::Subscription;
use crate::amqp::publish::PublishError;
use crate::amqp::topology::ConsumerQueue;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use lapin::types::FieldTable;

/// How many replayed letters share one publish and its confirms.
const REPLAY_BATCH: usize = 500;

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

/// Walks `queue`'s dead-letter queue: the messages now in it are delivered unacknowledged,
/// the ones `picks` are replayed or acked away, and the rest are given back in their order.
async fn walk(
    link: &Link,
    queue: &ConsumerQueue,
    picks: impl Fn(&DeadLetter) -> bool,
    action: Action,
) -> Result<u32, PublishError> {
    let dead_letters = &queue.dead_letters;
    let waiting = depth(link, dead_letters).await?.min(MAX_READ);
    if waiting == 0 {
        return Ok(0);
    }
    let prefetch = u16::try_from(waiting).unwrap_or(u16::MAX);
    let Subscription {
        channel,
        mut deliveries,
        ..
    } = link
        .consume(dead_letters, prefetch, "dead-letter-walk")
        .await?;
    let mut seen = 0;
    let mut matched = 0;
    let mut to_replay = Vec::new();
    while seen < waiting {
        let delivery = match tokio::time::timeout(DELIVERY_WAIT, deliveries.next()).await {
            Ok(Some(delivery)) => delivery?,
            Ok(None) | Err(_) => break,
        };
        seen += 1;
        if !picks(&DeadLetter::of(&delivery)) {
            continue;
        }
        matched += 1;
        match action {
            Action::Replay => {
                to_replay.push(delivery);
                if to_replay.len() >= REPLAY_BATCH {
                    send_back_all(link, &queue.name, &mut to_replay).await?;
                }
            }
            Action::Discard => {
                delivery.ack(BasicAckOptions::default()).await?;
            }
        }
    }
    send_back_all(link, &queue.name, &mut to_replay).await?;
    give_back(link, channel, dead_letters, seen - matched).await?;
    Ok(matched)
}

/// Sends `letters` back to `queue` in one batch (as [`super::replay`] sends each), waits
/// for the confirms, then acks them out of the dead-letter queue.
async fn send_back_all(
    link: &Link,
    queue: &str,
    letters: &mut Vec<Delivery>,
) -> Result<(), PublishError> {
    if letters.is_empty() {
        return Ok(());
    }
    let messages: Vec<_> = letters
        .iter()
        .map(|delivery| {
            let headers = replay_headers(delivery, FieldTable::default());
            copy_to(
                queue,
                delivery,
                delivery.properties.clone().with_headers(headers),
            )
        })
        .collect();
    link.publisher.publish(&messages).await?;
    for delivery in letters.drain(..) {
        delivery.ack(BasicAckOptions::default()).await?;
    }
    Ok(())
}
