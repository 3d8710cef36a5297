//! Reading every dead letter of a queue at once, for views that sum them all up (the
//! console's groups): a consumer whose prefetch is the queue's depth streams them, where
//! one `basic.get` each would cost a round trip per message — seconds for ten thousand.

use super::{DeadLetter, depth, give_back};
use crate::amqp::broker::Link;
use crate::amqp::link::Subscription;
use futures_util::StreamExt;
use lapin::Channel;
use std::time::Duration;

/// Most letters one read holds unacknowledged: AMQP's prefetch count is 16 bits.
pub const MAX_READ: u32 = u16::MAX as u32;

/// How long to wait for the next delivery before taking what came as all there is.
pub(super) const DELIVERY_WAIT: Duration = Duration::from_secs(2);

/// Letters read and still held unacknowledged on their channel: nobody else sees them
/// until [`Held::give_back`] has returned them to their queue, in order.
pub struct Held {
    link: Link,
    channel: Channel,
    queue: String,
    count: u32,
}

impl Held {
    /// How many letters are held.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Closes the channel, which returns the letters, and waits until they are back.
    pub async fn give_back(self) -> lapin::Result<()> {
        give_back(&self.link, self.channel, &self.queue, self.count).await
    }
}

/// Reads the dead letters now in `queue` (up to [`MAX_READ`]) without removing them: they
/// are delivered unacknowledged on a channel of their own and given back in order.
pub async fn read_all(link: &Link, queue: &str) -> lapin::Result<Vec<DeadLetter>> {
    let (letters, held) = read_and_hold(link, queue).await?;
    if let Some(held) = held {
        held.give_back().await?;
    }
    Ok(letters)
}

/// As [`read_all`], but the letters stay held until the caller gives them back — so a
/// view can answer first and return them after (returning ten thousand takes a while).
pub async fn read_and_hold(
    link: &Link,
    queue: &str,
) -> lapin::Result<(Vec<DeadLetter>, Option<Held>)> {
    let waiting = depth(link, queue).await?.min(MAX_READ);
    if waiting == 0 {
        return Ok((Vec::new(), None));
    }
    let prefetch = u16::try_from(waiting).unwrap_or(u16::MAX);
    let Subscription {
        channel,
        mut deliveries,
        ..
    } = link.consume(queue, prefetch, "dead-letter-read").await?;
    let mut letters = Vec::with_capacity(waiting as usize);
    while letters.len() < waiting as usize {
        match tokio::time::timeout(DELIVERY_WAIT, deliveries.next()).await {
            Ok(Some(delivery)) => letters.push(DeadLetter::of(&delivery?)),
            Ok(None) | Err(_) => break,
        }
    }
    let held = Held {
        link: link.clone(),
        channel,
        queue: queue.to_owned(),
        count: letters.len() as u32,
    };
    Ok((letters, Some(held)))
}
