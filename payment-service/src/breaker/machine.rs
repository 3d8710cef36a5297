//! The breaker's states and transitions (CONTRACT §13), with the time passed in by the
//! caller, so every transition is tested without waiting.
//!
//! ```text
//!            N unknown outcomes in a row             open period over
//!   Closed ──────────────────────────────▶ Open ───────────────────▶ HalfOpen
//!     ▲                                     ▲   probe's outcome unknown  │
//!     │                                     └────(open period doubles)───┤
//!     └──────────── the probe was answered (success, decline) ───────────┘
//! ```

use common::text_enum::TextEnum;
use std::time::{Duration, Instant};

/// The longest open period, however many probes failed.
pub const MAX_OPEN: Duration = Duration::from_secs(60);

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Unknown outcomes in a row that open it (`PAYMENT_BREAKER_FAILURES`).
    pub failures: u32,
    /// The first open period (`PAYMENT_BREAKER_OPEN_MS`); doubled after each failed probe,
    /// up to [`MAX_OPEN`].
    pub open_for: Duration,
}

/// What operators see: `/ready`, the metrics and `GET /breaker` use these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Calls go out as usual.
    Closed,
    /// No calls until the open period ends.
    Open,
    /// The next call is a probe; only it goes out.
    HalfOpen,
}

impl TextEnum for State {
    const ALL: &'static [Self] = &[Self::Closed, Self::Open, Self::HalfOpen];

    fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

common::text_enum_sqlx!(State);

/// What the worker may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Closed: claim and call as usual.
    Pass,
    /// Half-open, and this caller holds the one probe: claim one row and call for it, then
    /// report its outcome ([`Machine::record`]) or, if no call was made, give the probe
    /// back ([`Machine::release_probe`]).
    Probe,
    /// Open (for this long yet), or the probe is out: claim nothing.
    Wait(Option<Duration>),
}

/// How a call that was let through ended, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The provider answered: a success, a decline, or a refusal of our request.
    Answered,
    /// Unknown: a timeout, a cut connection, 409, 429 or 5xx.
    Failed,
}

/// Who let a call through: the closed breaker (in the given closed period), or the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Closed { period: u64 },
    Probe,
}

/// A change of state, for the logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Opened for `open_for`: after failures in a row (`from` closed) or a failed probe.
    Opened {
        from: State,
        open_for: Duration,
    },
    HalfOpened,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_out: bool },
}

/// One process's breaker.
#[derive(Debug)]
pub struct Machine {
    settings: Settings,
    phase: Phase,
    /// The current (or last) open period: the first one, doubled per failed probe.
    open_for: Duration,
    /// Counts closed periods. An outcome of a call let through in an earlier one (still in
    /// flight when the breaker opened) neither opens it again nor closes it.
    period: u64,
}

impl Machine {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            phase: Phase::Closed { failures: 0 },
            open_for: settings.open_for,
            period: 0,
        }
    }

    pub fn state(&self) -> State {
        match self.phase {
            Phase::Closed { .. } => State::Closed,
            Phase::Open { .. } => State::Open,
            Phase::HalfOpen { .. } => State::HalfOpen,
        }
    }

    /// What the worker's loop may do at `now`. Past the open period the breaker turns
    /// half-open, and the first caller then gets the probe.
    pub fn gate(&mut self, now: Instant) -> (Gate, Option<Transition>) {
        let mut transition = None;
        if let Phase::Open { until } = self.phase {
            if now < until {
                return (Gate::Wait(Some(until - now)), None);
            }
            self.phase = Phase::HalfOpen { probe_out: false };
            transition = Some(Transition::HalfOpened);
        }
        let gate = match &mut self.phase {
            Phase::Closed { .. } => Gate::Pass,
            Phase::HalfOpen { probe_out } if !*probe_out => {
                *probe_out = true;
                Gate::Probe
            }
            _ => Gate::Wait(None),
        };
        (gate, transition)
    }

    /// Lets one call through if the breaker is closed; `None` otherwise (only the probe
    /// passes a half-open breaker, and it comes from [`Machine::gate`]).
    pub fn let_through(&self) -> Option<Pass> {
        match self.phase {
            Phase::Closed { .. } => Some(Pass::Closed {
                period: self.period,
            }),
            _ => None,
        }
    }

    /// Takes in the outcome of a call let through by `pass`.
    pub fn record(&mut self, pass: Pass, outcome: Outcome, now: Instant) -> Option<Transition> {
        match (pass, self.phase, outcome) {
            (Pass::Closed { period }, Phase::Closed { failures }, _) if period == self.period => {
                match outcome {
                    Outcome::Answered => {
                        self.phase = Phase::Closed { failures: 0 };
                        None
                    }
                    Outcome::Failed if failures + 1 >= self.settings.failures => {
                        self.open_for = self.settings.open_for;
                        Some(self.open(State::Closed, now))
                    }
                    Outcome::Failed => {
                        self.phase = Phase::Closed {
                            failures: failures + 1,
                        };
                        None
                    }
                }
            }
            (Pass::Probe, Phase::HalfOpen { probe_out: true }, Outcome::Answered) => {
                self.phase = Phase::Closed { failures: 0 };
                self.open_for = self.settings.open_for;
                Some(Transition::Closed)
            }
            (Pass::Probe, Phase::HalfOpen { probe_out: true }, Outcome::Failed) => {
                self.open_for = (self.open_for * 2).min(MAX_OPEN);
                Some(self.open(State::HalfOpen, now))
            }
            // A call from an earlier closed period: the breaker has moved on since.
            _ => None,
        }
    }

    /// The probe made no call after all (its row needed none, or the claim found no row):
    /// the next caller of [`Machine::gate`] gets it.
    pub fn release_probe(&mut self) {
        if let Phase::HalfOpen { probe_out } = &mut self.phase {
            *probe_out = false;
        }
    }

    fn open(&mut self, from: State, now: Instant) -> Transition {
        self.phase = Phase::Open {
            until: now + self.open_for,
        };
        self.period += 1;
        Transition::Opened {
            from,
            open_for: self.open_for,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn breaker(failures: u32) -> (Machine, Instant) {
        let machine = Machine::new(Settings {
            failures,
            open_for: SECOND,
        });
        (machine, Instant::now())
    }

    /// Fails `n` calls let through by the closed breaker, returning the last transition.
    fn fail(machine: &mut Machine, n: u32, now: Instant) -> Option<Transition> {
        let mut last = None;
        for _ in 0..n {
            let pass = machine.let_through().expect("closed");
            last = machine.record(pass, Outcome::Failed, now);
        }
        last
    }

    /// Opens a closed breaker with `failures` failures at `now`.
    fn opened(failures: u32) -> (Machine, Instant) {
        let (mut machine, now) = breaker(failures);
        fail(&mut machine, failures, now);
        assert_eq!(machine.state(), State::Open);
        (machine, now)
    }

    #[test]
    fn a_closed_breaker_lets_every_call_through() {
        let (mut machine, now) = breaker(3);
        assert_eq!(machine.gate(now), (Gate::Pass, None));
        for _ in 0..100 {
            let pass = machine.let_through().expect("closed");
            assert_eq!(machine.record(pass, Outcome::Answered, now), None);
        }
        assert_eq!(machine.state(), State::Closed);
    }

    #[test]
    fn failures_in_a_row_open_it_at_the_threshold() {
        let (mut machine, now) = breaker(3);
        assert_eq!(fail(&mut machine, 2, now), None);
        assert_eq!(machine.state(), State::Closed);
        assert_eq!(
            fail(&mut machine, 1, now),
            Some(Transition::Opened {
                from: State::Closed,
                open_for: SECOND
            })
        );
        assert_eq!(machine.state(), State::Open);
        assert_eq!(machine.let_through(), None);
    }

    #[test]
    fn an_answer_resets_the_count_so_only_failures_in_a_row_open_it() {
        let (mut machine, now) = breaker(3);
        for _ in 0..10 {
            fail(&mut machine, 2, now);
            let pass = machine.let_through().expect("closed");
            machine.record(pass, Outcome::Answered, now);
        }
        assert_eq!(machine.state(), State::Closed);
    }

    #[test]
    fn declines_are_answers_and_never_open_it() {
        // Declines and refusals of our request are reported as `Answered` by the caller.
        let (mut machine, now) = breaker(1);
        for _ in 0..50 {
            let pass = machine.let_through().expect("closed");
            assert_eq!(machine.record(pass, Outcome::Answered, now), None);
        }
        assert_eq!(machine.state(), State::Closed);
    }

    #[test]
    fn an_open_breaker_holds_every_call_until_its_period_ends() {
        let (mut machine, now) = opened(2);
        assert_eq!(
            machine.gate(now),
            (Gate::Wait(Some(SECOND)), None),
            "the whole period is left"
        );
        let later = now + Duration::from_millis(999);
        assert_eq!(
            machine.gate(later),
            (Gate::Wait(Some(Duration::from_millis(1))), None)
        );
        assert_eq!(machine.let_through(), None);
        assert_eq!(machine.state(), State::Open);
    }

    #[test]
    fn after_the_open_period_exactly_one_probe_goes_out() {
        let (mut machine, now) = opened(2);
        let then = now + SECOND;
        assert_eq!(
            machine.gate(then),
            (Gate::Probe, Some(Transition::HalfOpened))
        );
        assert_eq!(machine.state(), State::HalfOpen);
        // While the probe is out, nobody else calls: neither the loop nor a step.
        for _ in 0..10 {
            assert_eq!(machine.gate(then), (Gate::Wait(None), None));
            assert_eq!(machine.let_through(), None);
        }
    }

    #[test]
    fn an_answered_probe_closes_it() {
        let (mut machine, now) = opened(2);
        let then = now + SECOND;
        machine.gate(then);
        assert_eq!(
            machine.record(Pass::Probe, Outcome::Answered, then),
            Some(Transition::Closed)
        );
        assert_eq!(machine.state(), State::Closed);
        assert_eq!(machine.gate(then), (Gate::Pass, None));
        // The count starts again from zero.
        assert_eq!(fail(&mut machine, 1, then), None);
        assert_eq!(machine.state(), State::Closed);
    }

    #[test]
    fn a_failed_probe_opens_it_again_for_twice_as_long() {
        let (mut machine, now) = opened(2);
        let then = now + SECOND;
        machine.gate(then);
        assert_eq!(
            machine.record(Pass::Probe, Outcome::Failed, then),
            Some(Transition::Opened {
                from: State::HalfOpen,
                open_for: 2 * SECOND
            })
        );
        assert_eq!(machine.state(), State::Open);
        assert_eq!(
            machine.gate(then + SECOND),
            (Gate::Wait(Some(SECOND)), None)
        );
        assert_eq!(
            machine.gate(then + 2 * SECOND),
            (Gate::Probe, Some(Transition::HalfOpened))
        );
    }

    #[test]
    fn the_open_period_doubles_per_failed_probe_up_to_a_minute() {
        let (mut machine, mut now) = opened(1);
        let mut periods = Vec::new();
        for _ in 0..9 {
            now += MAX_OPEN;
            assert_eq!(machine.gate(now).0, Gate::Probe);
            match machine.record(Pass::Probe, Outcome::Failed, now) {
                Some(Transition::Opened { open_for, .. }) => periods.push(open_for.as_secs()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(periods, [2, 4, 8, 16, 32, 60, 60, 60, 60]);
    }

    #[test]
    fn closing_resets_the_open_period_to_the_first_one() {
        let (mut machine, mut now) = opened(1);
        for _ in 0..3 {
            now += MAX_OPEN;
            machine.gate(now);
            machine.record(Pass::Probe, Outcome::Failed, now);
        }
        now += MAX_OPEN;
        machine.gate(now);
        machine.record(Pass::Probe, Outcome::Answered, now);
        assert_eq!(
            fail(&mut machine, 1, now),
            Some(Transition::Opened {
                from: State::Closed,
                open_for: SECOND
            })
        );
    }

    #[test]
    fn a_probe_given_back_unused_goes_to_the_next_caller() {
        let (mut machine, now) = opened(1);
        let then = now + SECOND;
        assert_eq!(machine.gate(then).0, Gate::Probe);
        machine.release_probe();
        assert_eq!(machine.state(), State::HalfOpen);
        assert_eq!(machine.gate(then), (Gate::Probe, None));
        assert_eq!(machine.gate(then), (Gate::Wait(None), None));
    }

    #[test]
    fn outcomes_of_calls_from_before_it_opened_change_nothing() {
        let (mut machine, now) = breaker(2);
        // Three calls go out while closed; two fail and open the breaker.
        let passes: Vec<Pass> = (0..3).map(|_| machine.let_through().unwrap()).collect();
        machine.record(passes[0], Outcome::Failed, now);
        machine.record(passes[1], Outcome::Failed, now);
        assert_eq!(machine.state(), State::Open);
        // The third answers late: the breaker stays open (only a probe closes it)...
        assert_eq!(machine.record(passes[2], Outcome::Answered, now), None);
        assert_eq!(machine.state(), State::Open);
        // ... and in the next closed period a stale failure does not count either.
        let then = now + SECOND;
        machine.gate(then);
        machine.record(Pass::Probe, Outcome::Answered, then);
        assert_eq!(machine.record(passes[2], Outcome::Failed, then), None);
        assert_eq!(fail(&mut machine, 1, then), None, "one failure of two");
        assert_eq!(machine.state(), State::Closed);
    }

    #[test]
    fn a_probe_outcome_reported_when_no_probe_is_out_changes_nothing() {
        let (mut machine, now) = breaker(1);
        assert_eq!(machine.record(Pass::Probe, Outcome::Failed, now), None);
        assert_eq!(machine.state(), State::Closed);
        fail(&mut machine, 1, now);
        assert_eq!(machine.record(Pass::Probe, Outcome::Answered, now), None);
        assert_eq!(machine.state(), State::Open);
    }
}
