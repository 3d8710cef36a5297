//! Waking the workers' loop: its bell and the soonest row it left for later. A worker's
//! own steps and the consumer say when a row is due again; a commit that makes a payment
//! due sends a PostgreSQL `NOTIFY`, which rings every replica's bell; a lost one costs at
//! most a poll.

use super::POLL;
use crate::payments::DUE_CHANNEL;
use common::store::Store;
use sqlx::postgres::PgListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Tells the loop when a row is due again (a declined attempt's backoff, an unknown
/// outcome's next try), so it wakes for it without asking the database. The worker's own
/// steps use it, and so does the consumer when it declines a first attempt in its
/// transaction; cheap to clone.
#[derive(Clone, Default)]
pub struct WorkerWake {
    soonest: Arc<Mutex<Option<Instant>>>,
    /// Rows were left due for the loop and it has not caught up with them yet: until it
    /// has, the consumer starts no first attempt itself, so a row left due is never
    /// starved of call slots by newer ones started in the consumer.
    behind: Arc<AtomicBool>,
    /// Rung when the loop should look again: a row due, a slot free, the probe back.
    pub(super) bell: Arc<Notify>,
}

impl WorkerWake {
    /// A row is due again after `delay`: the loop, if it waits longer, looks again now and
    /// then waits until then at most. Early is harmless (a look that finds nothing).
    pub fn due_after(&self, delay: Duration) {
        let at = Instant::now() + delay;
        {
            let mut soonest = self.soonest.lock().unwrap_or_else(|p| p.into_inner());
            *soonest = Some(soonest.map_or(at, |known| known.min(at)));
        }
        self.bell.notify_one();
    }

    /// The consumer left a row due for the loop (no call slot was free, or the breaker was
    /// not closed).
    pub fn left_due(&self) {
        self.behind.store(true, Ordering::Relaxed);
    }

    /// The loop found no more rows due than it could take.
    pub(super) fn caught_up(&self) {
        self.behind.store(false, Ordering::Relaxed);
    }

    /// Whether rows left due wait for the loop.
    pub(super) fn is_behind(&self) -> bool {
        self.behind.load(Ordering::Relaxed)
    }

    /// How long until the soonest row this worker left for later is due (forgetting it
    /// once it is).
    pub(super) fn until_soonest(&self) -> Duration {
        let mut soonest = self.soonest.lock().unwrap_or_else(|p| p.into_inner());
        match *soonest {
            Some(at) if at > Instant::now() => at - Instant::now(),
            Some(_) => {
                *soonest = None;
                Duration::ZERO
            }
            None => POLL,
        }
    }
}

/// Rings `bell` on every `NOTIFY` on [`DUE_CHANNEL`] until `stop`. Notifications are only
/// a hint: a lost one costs at most [`POLL`].
pub(super) async fn listen(store: Store, bell: Arc<Notify>, stop: CancellationToken) {
    let work = async {
        loop {
            let mut listener = match PgListener::connect_with(store.pool()).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::debug!(%error, "cannot listen for due payments yet");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            if let Err(error) = listener.listen(DUE_CHANNEL).await {
                tracing::debug!(%error, "cannot listen for due payments yet");
                tokio::time::sleep(POLL).await;
                continue;
            }
            loop {
                match listener.recv().await {
                    Ok(_) => bell.notify_one(),
                    Err(error) => {
                        tracing::debug!(%error, "lost the due-payment notifications; listening again");
                        tokio::time::sleep(POLL).await;
                        break;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = work => {}
        _ = stop.cancelled() => {}
    }
}
