//! When each saga ends: its last notification committed. A saga of the happy path is
//! notified twice (`PaymentProcessed`, `OrderConfirmed`), by two deliveries that may be
//! committed in either order, so the tracker counts them down.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Notifications a saga commits before it counts as done.
const NOTIFICATIONS_PER_SAGA: u8 = 2;

/// Sagas under way.
#[derive(Default)]
pub struct Tracker {
    waiting: Mutex<HashMap<Uuid, Waiting>>,
}

struct Waiting {
    notifications_left: u8,
    done: oneshot::Sender<Instant>,
}

impl Tracker {
    /// Starts watching `order_id`; the receiver gets the moment its last notification
    /// committed. Called before the order is posted, so no notification can come first.
    pub fn expect(&self, order_id: Uuid) -> oneshot::Receiver<Instant> {
        let (done, ended) = oneshot::channel();
        let waiting = Waiting {
            notifications_left: NOTIFICATIONS_PER_SAGA,
            done,
        };
        self.lock().insert(order_id, waiting);
        ended
    }

    /// A notification of `order_id` committed at `at`.
    pub fn notified(&self, order_id: Uuid, at: Instant) {
        let mut waiting = self.lock();
        let Some(saga) = waiting.get_mut(&order_id) else {
            return;
        };
        saga.notifications_left = saga.notifications_left.saturating_sub(1);
        if saga.notifications_left == 0
            && let Some(saga) = waiting.remove(&order_id)
        {
            // The client may have given up (a failed run); nothing to tell then.
            let _ = saga.done.send(at);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Waiting>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saga_ends_at_its_second_notification_whichever_comes_first() {
        let tracker = Tracker::default();
        let order = Uuid::now_v7();
        let mut ended = tracker.expect(order);
        let first = Instant::now();
        tracker.notified(order, first);
        assert!(ended.try_recv().is_err(), "one notification is not the end");
        let second = Instant::now();
        tracker.notified(order, second);
        assert_eq!(ended.try_recv().unwrap(), second);
        // A late duplicate changes nothing.
        tracker.notified(order, Instant::now());
    }
}
