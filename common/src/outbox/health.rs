//! What the relay reports about itself, for `/ready`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A batch still waiting after this makes `/ready` answer 503.
const STALLED_AFTER: Duration = Duration::from_secs(5);

/// What the relay reports about itself, for `/ready`: a service whose events cannot get out
/// is not ready, even while its broker connection looks open.
#[derive(Debug, Default)]
pub struct RelayHealth {
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    /// When the batch now waiting for RabbitMQ started.
    batch_since: Option<Instant>,
    /// Why the last pass failed, until one succeeds.
    failure: Option<String>,
}

impl RelayHealth {
    /// What is wrong with the relay, if anything.
    pub fn problem(&self) -> Option<String> {
        let state = self.lock();
        if let Some(since) = state.batch_since
            && since.elapsed() > STALLED_AFTER
        {
            return Some(format!(
                "outbox relay: a batch has waited {} s for RabbitMQ",
                since.elapsed().as_secs()
            ));
        }
        state
            .failure
            .as_ref()
            .map(|failure| format!("outbox relay: {failure}"))
    }

    /// Marks a batch as waiting for RabbitMQ until the returned guard is dropped.
    pub(super) fn waiting(&self) -> Waiting<'_> {
        self.lock().batch_since = Some(Instant::now());
        Waiting(self)
    }

    pub(super) fn record<E: ToString>(&self, result: Result<(), &E>) {
        self.lock().failure = result.err().map(ToString::to_string);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A batch waiting for RabbitMQ; it stops counting when dropped, however the wait ended.
pub(super) struct Waiting<'a>(&'a RelayHealth);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().batch_since = None;
    }
}
