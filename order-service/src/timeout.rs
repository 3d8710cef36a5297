//! The saga timeout: orders `PENDING` longer than `SAGA_TIMEOUT_SECS` are cancelled with
//! reason `TIMEOUT`. Safe with replicas: each sweep locks its rows with `SKIP LOCKED`.

use crate::announcement::Announcement;
use crate::repo::{self, TimelineEntry};
use common::store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Orders cancelled per transaction at most.
const BATCH: i64 = 100;

pub struct TimeoutSweeper {
    pub store: Store,
    pub timeout: Duration,
}

impl TimeoutSweeper {
    /// How often to look: a quarter of the timeout, between 100 ms and 5 s.
    pub fn interval(&self) -> Duration {
        (self.timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
    }

    pub async fn run(self, stop: CancellationToken) {
        let interval = self.interval();
        while !stop.is_cancelled() {
            let swept = match self.sweep_once().await {
                Ok(count) => count,
                Err(error) => {
                    tracing::warn!(%error, "timeout sweep failed; will try again");
                    0
                }
            };
            if swept < BATCH as usize {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop.cancelled() => {}
                }
            }
        }
    }

    /// Cancels one batch of expired orders; returns how many.
    pub async fn sweep_once(&self) -> Result<usize, sqlx::Error> {
        let mut uow = self.store.begin().await?;
        let expired = repo::expire(uow.conn(), self.timeout, BATCH).await?;
        for order in &expired {
            // The saga that timed out is the one the order's OrderCreated started: that
            // event is the cancellation's cause (CONTRACT §4 `causation_id`).
            let created = repo::timeline(uow.conn(), order.id)
                .await?
                .into_iter()
                .flatten()
                .find(|entry| entry.event_type == "OrderCreated")
                .map(|entry| entry.event_id);
            if let Some(envelope) = Announcement::new().publish(&mut uow, order, created) {
                repo::note(uow.conn(), order.id, &TimelineEntry::of(&envelope)).await?;
            }
        }
        uow.commit().await?;
        if !expired.is_empty() {
            tracing::info!(count = expired.len(), timeout = ?self.timeout, "cancelled orders that timed out");
        }
        Ok(expired.len())
    }
}
