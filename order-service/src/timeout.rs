//! The saga timeout: orders `PENDING` longer than `SAGA_TIMEOUT_SECS` are cancelled with
//! reason `TIMEOUT`. Safe with replicas: each sweep locks its rows with `SKIP LOCKED`.

use crate::domain::Outcome;
use crate::ending::{self, Cause};
use crate::repo;
use common::store::Store;
use contract::events::CancellationReason;
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

    /// Cancels one batch of expired orders, each through [`ending::end`]; returns how many.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn sweep_once(&self) -> Result<usize, sqlx::Error> {
        let mut uow = self.store.begin().await?;
        let expired = repo::expired(uow.conn(), self.timeout, BATCH).await?;
        let mut cancelled = 0;
        for order_id in expired {
            let created = repo::created_event(uow.conn(), order_id).await?;
            let outcome = Outcome::Cancelled(CancellationReason::Timeout);
            if ending::end(&mut uow, order_id, outcome, Cause::Timeout { created })
                .await?
                .is_some()
            {
                cancelled += 1;
            }
        }
        uow.commit().await?;
        if cancelled > 0 {
            tracing::info!(count = cancelled, timeout = ?self.timeout, "cancelled orders that timed out");
        }
        Ok(cancelled)
    }
}
