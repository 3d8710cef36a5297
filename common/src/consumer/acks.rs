//! Settling deliveries in as few frames as is safe: a batch whose deliveries are all the
//! channel still holds up to its last one is acknowledged with one `basic.ack` (`multiple`),
//! which RabbitMQ and lapin handle once instead of once per message. When another batch in
//! flight or a delivery held for a later round sits below, `multiple` would settle those
//! too, so the batch's deliveries are acked one by one.
//!
//! Every ack and nack of the subscription goes through here, one at a time, so that frames
//! leave in the order they were decided: a `multiple` ack never overtakes a nack of a
//! delivery below it.

use super::BROKER_OP_TIMEOUT;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

/// The deliveries of one subscription's channel not yet settled.
#[derive(Debug, Default)]
pub(super) struct Acks {
    /// Delivery tags received and not yet acked or nacked.
    unsettled: Mutex<BTreeSet<u64>>,
    /// Held while deciding and sending a settlement.
    turn: tokio::sync::Mutex<()>,
}

impl Acks {
    /// A delivery arrived; it counts as unsettled until it is acked or nacked here.
    pub(super) fn received(&self, delivery: &Delivery) {
        self.lock().insert(delivery.delivery_tag);
    }

    /// Acks `deliveries`: with one frame when every unsettled delivery up to the last of
    /// them is one of them, else each with its own. If an ack fails the channel is gone and
    /// RabbitMQ will redeliver the messages, which the inbox then recognises as done.
    pub(super) async fn ack(&self, deliveries: &[&Delivery]) {
        let Some(last) = deliveries.iter().max_by_key(|d| d.delivery_tag) else {
            return;
        };
        let _turn = self.turn.lock().await;
        let tags: BTreeSet<u64> = deliveries.iter().map(|d| d.delivery_tag).collect();
        if settle_together(&mut self.lock(), &tags) {
            send_ack(last, true).await;
        } else {
            for delivery in deliveries {
                send_ack(delivery, false).await;
            }
        }
    }

    /// Hands the delivery back to RabbitMQ for another consumer or a later try.
    pub(super) async fn requeue(&self, delivery: &Delivery) {
        let _turn = self.turn.lock().await;
        self.lock().remove(&delivery.delivery_tag);
        let nack = delivery.nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        });
        let _ = tokio::time::timeout(BROKER_OP_TIMEOUT, nack).await;
    }

    /// The tags are plain numbers, consistent at every step: a poisoned lock is still good.
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.unsettled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Takes `tags` out of `unsettled`; true when one `multiple` ack of the last of them settles
/// exactly them (every unsettled tag up to it is one of them), and they are more than one.
fn settle_together(unsettled: &mut BTreeSet<u64>, tags: &BTreeSet<u64>) -> bool {
    let Some(&last) = tags.last() else {
        return false;
    };
    let together = unsettled.range(..=last).all(|tag| tags.contains(tag));
    for tag in tags {
        unsettled.remove(tag);
    }
    together && tags.len() > 1
}

/// One `basic.ack` for `delivery` (and, with `multiple`, every unsettled one below it).
async fn send_ack(delivery: &Delivery, multiple: bool) {
    let ack = delivery.ack(BasicAckOptions { multiple });
    match tokio::time::timeout(BROKER_OP_TIMEOUT, ack).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "ack failed; the message will be redelivered and skipped")
        }
        Err(_) => tracing::warn!("ack timed out; the message will be redelivered and skipped"),
    }
}

#[cfg(test)]
mod tests {
    use super::settle_together;
    use std::collections::BTreeSet;

    fn set(tags: &[u64]) -> BTreeSet<u64> {
        tags.iter().copied().collect()
    }

    #[test]
    fn a_batch_alone_below_its_last_tag_is_acked_with_one_frame() {
        let mut unsettled = set(&[1, 2, 3, 4, 5, 6]);
        assert!(settle_together(&mut unsettled, &set(&[1, 2, 3])));
        assert_eq!(unsettled, set(&[4, 5, 6]));
        assert!(settle_together(&mut unsettled, &set(&[4, 5, 6])));
        assert!(unsettled.is_empty());
    }

    #[test]
    fn a_batch_above_unsettled_deliveries_is_acked_one_by_one() {
        // 1-3 are the other batch in flight, 4 is held for a later round.
        let mut unsettled = set(&[1, 2, 3, 4, 5, 6, 7]);
        assert!(!settle_together(&mut unsettled, &set(&[5, 6, 7])));
        assert_eq!(unsettled, set(&[1, 2, 3, 4]), "the others stay unsettled");
        assert!(settle_together(&mut unsettled, &set(&[1, 2, 3])));
        // The held one settles on its own, with a single ack.
        assert!(!settle_together(&mut unsettled, &set(&[4])));
        assert!(unsettled.is_empty());
    }

    #[test]
    fn a_batch_with_a_gap_of_its_own_is_still_one_frame_when_nothing_else_sits_in_it() {
        // 2 went to the dead-letter queue and was acked already.
        let mut unsettled = set(&[1, 3, 4]);
        assert!(settle_together(&mut unsettled, &set(&[1, 3, 4])));
    }
}
