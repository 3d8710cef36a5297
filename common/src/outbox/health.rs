//! What the outbox's publishers report about themselves, for `/ready`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A batch still waiting after this makes `/ready` answer 503.
const STALLED_AFTER: Duration = Duration::from_secs(5);

/// What the outbox's publishers (the committing tasks and the relay) report, for `/ready`:
/// a service whose events cannot get out is not ready, even while its broker connection
/// looks open.
#[derive(Debug, Default)]
pub struct RelayHealth {
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    /// When each batch now waiting for RabbitMQ started, by a number of its own.
    waiting: HashMap<u64, Instant>,
    next: u64,
    /// Why the last pass failed, until one succeeds.
    failure: Option<String>,
}

impl RelayHealth {
    /// What is wrong with the relay, if anything. A batch's wait counts from `counted_from`
    /// when that is later than its start: the moment the broker's last block cleared (time
    /// blocked by an alarm is a pause, not a stall), or now while it is still blocked.
    pub fn problem(&self, counted_from: Option<Instant>) -> Option<String> {
        let state = self.lock();
        let waited = state
            .waiting
            .values()
            .min()
            .map(|since| (*since).max(counted_from.unwrap_or(*since)).elapsed());
        if let Some(waited) = waited
            && waited > STALLED_AFTER
        {
            return Some(format!(
                "outbox: events have waited {} s for RabbitMQ confirms",
                waited.as_secs()
            ));
        }
        state
            .failure
            .as_ref()
            .map(|failure| format!("outbox: {failure}"))
    }

    /// Marks a batch as waiting for RabbitMQ until the returned guard is dropped.
    pub(super) fn waiting(&self) -> Waiting<'_> {
        let mut state = self.lock();
        let id = state.next;
        state.next += 1;
        state.waiting.insert(id, Instant::now());
        Waiting(self, id)
    }

    pub(super) fn record<E: ToString>(&self, result: Result<(), &E>) {
        self.lock().failure = result.err().map(ToString::to_string);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        super::lock(&self.state)
    }
}

/// A batch waiting for RabbitMQ; it stops counting when dropped, however the wait ended.
pub(super) struct Waiting<'a>(&'a RelayHealth, u64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().waiting.remove(&self.1);
    }
}
