//! The one place that knows about the `backoff` crate (unmaintained, RUSTSEC-2025-0012),
//! so swapping it for another crate touches only this file.

use backoff::backoff::Backoff as _;
use std::time::Duration;

/// Exponential delays with ±30 % jitter, doubling from `initial` up to `max`, forever.
pub struct Backoff(backoff::ExponentialBackoff);

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self(backoff::ExponentialBackoff {
            current_interval: initial,
            initial_interval: initial,
            randomization_factor: 0.3,
            multiplier: 2.0,
            max_interval: max,
            max_elapsed_time: None,
            ..Default::default()
        })
    }

    /// The delay for reconnecting to PostgreSQL or RabbitMQ: 100 ms doubling to 5 s.
    pub fn reconnect() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        self.0.next_backoff().unwrap_or(self.0.max_interval)
    }

    /// Starts again from the initial delay, after a success.
    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// The jittered delay before retry number `retry` (1 for the first retry), as this
    /// backoff would produce it; used where the count survives a restart in a database.
    pub fn nth_delay(initial: Duration, retry: u32) -> Duration {
        let mut backoff = Self::new(initial, initial.saturating_mul(1 << retry.min(16)));
        (0..retry.max(1))
            .map(|_| backoff.next_delay())
            .last()
            .unwrap_or(initial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_the_jitter() {
        for retry in 1..=4u32 {
            let expected = 100.0 * 2f64.powi(retry as i32 - 1);
            let delay = Backoff::nth_delay(Duration::from_millis(100), retry).as_millis() as f64;
            assert!(
                (expected * 0.69..=expected * 1.31).contains(&delay),
                "retry {retry}: {delay} ms, expected about {expected} ms"
            );
        }
    }

    #[test]
    fn reconnect_delays_are_capped() {
        let mut backoff = Backoff::reconnect();
        let delays: Vec<_> = (0..20).map(|_| backoff.next_delay()).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(6_500)));
    }
}
