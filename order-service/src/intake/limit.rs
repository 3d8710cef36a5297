//! The admission bound that follows the system (issue 35): instead of a fixed count of
//! `PENDING` orders, as many as the system finishes within the target time of a saga.
//!
//! By Little's law, `pending = drain rate × saga time`. Each count of the `PENDING` orders
//! also reads the median age of those orders; with arrivals spread over a saga's time, a
//! saga takes about twice that median, so the system drains about `pending / (2 × median
//! age)` orders a second, and `drain × target` orders can be pending for accepted sagas to
//! take the target time. The median, not the oldest: a few orders stuck on a backoff or a
//! timeout do not shrink the bound, a slow provider, a broker alarm or a cold database do.
//! The bound moves a small part of the way at each count (a third in a tenth of a second), stays at least [`FLOOR`] (a burst of
//! that many is always taken, and the pipeline is never starved) and at most
//! `MAX_PENDING_ORDERS`, the hard ceiling. The same drain rate tells a turned-away client
//! when a place will be free ([`Limit::retry_after`]).
//!
//! Models: Netflix's concurrency-limits (gradient, Vegas) and Envoy's adaptive concurrency
//! adapt to latency measured per request; the saga's latency is measured here from the
//! orders in flight, which every replica sees the same way.

use std::time::Duration;

/// The least the bound goes down to (or `MAX_PENDING_ORDERS`, if that is lower).
pub(super) const FLOOR: i64 = 128;
/// How far the bound moves towards its new target at each count (fifty a second: about a
/// third of the way in a tenth of a second).
const STEP: f64 = 0.07;
/// The longest `Retry-After` a turned-away POST is told.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(super) struct Limit {
    ceiling: i64,
    /// The target time of an accepted saga; `None` keeps the bound at the ceiling.
    target: Option<Duration>,
    /// The bound now.
    current: f64,
    /// Orders the system finishes a second, as last measured (0 before any).
    drain: f64,
}

impl Limit {
    /// A bound of at most `ceiling`, adapting to `target` (or fixed at the ceiling).
    pub(super) fn new(ceiling: i64, target: Option<Duration>) -> Self {
        Self {
            ceiling,
            target,
            current: ceiling as f64,
            drain: 0.0,
        }
    }

    /// The bound: at most this many orders pending.
    pub(super) fn bound(&self) -> i64 {
        (self.current.round() as i64).clamp(self.floor(), self.ceiling)
    }

    pub(super) fn ceiling(&self) -> i64 {
        self.ceiling
    }

    fn floor(&self) -> i64 {
        FLOOR.min(self.ceiling)
    }

    /// Takes in a count: `pending` orders, half of them older than `median_age`.
    pub(super) fn observe(&mut self, pending: i64, median_age: Duration) {
        let Some(target) = self.target else {
            return;
        };
        // Too few or too young to measure anything: the last rate holds.
        if pending >= 8 && median_age >= Duration::from_millis(1) {
            let drain = pending as f64 / (2.0 * median_age.as_secs_f64());
            self.drain = if self.drain == 0.0 {
                drain
            } else {
                self.drain + STEP * (drain - self.drain)
            };
        }
        if self.drain == 0.0 {
            return;
        }
        let wanted =
            (self.drain * target.as_secs_f64()).clamp(self.floor() as f64, self.ceiling as f64);
        self.current += STEP * (wanted - self.current);
    }

    /// When a POST turned away with `taken` places taken should come back: the time the
    /// system takes to finish what is over the bound and one more, at the measured rate
    /// (whole seconds, as `Retry-After` says it; at least one).
    pub(super) fn retry_after(&self, taken: i64) -> Duration {
        let over = (taken - self.bound() + 1).max(1) as f64;
        if self.drain <= 0.0 {
            return Duration::from_secs(1);
        }
        let secs = (over / self.drain).ceil().max(1.0);
        Duration::from_secs_f64(secs).min(MAX_RETRY_AFTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_millis(500);
    /// Counts in five seconds.
    const SECONDS: usize = 250;

    /// Counts `times` times a system that finishes `rate` orders a second with the bound
    /// full: half of the pending orders are older than `pending / rate / 2`.
    fn run(limit: &mut Limit, rate: f64, times: usize) {
        for _ in 0..times {
            let pending = limit.bound();
            let median = Duration::from_secs_f64(pending as f64 / rate / 2.0);
            limit.observe(pending, median);
        }
    }

    #[test]
    fn the_bound_settles_where_accepted_sagas_take_the_target_time() {
        let mut limit = Limit::new(1000, Some(TARGET));
        run(&mut limit, 600.0, SECONDS);
        assert!((limit.bound() - 300).abs() <= 3, "{}", limit.bound());
        // The system slows to a third (a slow provider): the bound follows within seconds.
        run(&mut limit, 200.0, SECONDS);
        assert_eq!(limit.bound(), FLOOR, "300 × 0.5 s is under the floor");
        run(&mut limit, 1000.0, SECONDS);
        assert!((limit.bound() - 500).abs() <= 5, "{}", limit.bound());
    }

    #[test]
    fn the_bound_stays_between_the_floor_and_the_ceiling() {
        let mut limit = Limit::new(1000, Some(TARGET));
        run(&mut limit, 100_000.0, SECONDS);
        assert_eq!(limit.bound(), 1000);
        run(&mut limit, 1.0, SECONDS);
        assert_eq!(limit.bound(), FLOOR);
        // A ceiling under the floor is the bound, exactly (the tests' MAX_PENDING_ORDERS=3).
        let mut small = Limit::new(3, Some(TARGET));
        run(&mut small, 1.0, SECONDS);
        assert_eq!(small.bound(), 3);
    }

    #[test]
    fn without_a_target_the_bound_is_the_ceiling() {
        let mut fixed = Limit::new(1000, None);
        run(&mut fixed, 10.0, SECONDS);
        assert_eq!(fixed.bound(), 1000);
    }

    #[test]
    fn a_few_stuck_orders_do_not_count_as_a_slow_system() {
        let mut limit = Limit::new(1000, Some(TARGET));
        run(&mut limit, 600.0, SECONDS);
        let before = limit.bound();
        // Five orders hang for 30 s among 300 young ones: the median hardly moves.
        limit.observe(305, Duration::from_millis(255));
        assert!(
            (limit.bound() - before).abs() <= 5,
            "{before} → {}",
            limit.bound()
        );
    }

    #[test]
    fn retry_after_is_the_time_to_drain_what_is_over_the_bound() {
        let mut limit = Limit::new(1000, Some(TARGET));
        assert_eq!(
            limit.retry_after(5000),
            Duration::from_secs(1),
            "no rate yet"
        );
        run(&mut limit, 600.0, SECONDS);
        let bound = limit.bound();
        assert_eq!(limit.retry_after(bound), Duration::from_secs(1));
        assert_eq!(limit.retry_after(bound + 1800), Duration::from_secs(4));
        assert_eq!(limit.retry_after(bound + 1_000_000), MAX_RETRY_AFTER);
    }
}
