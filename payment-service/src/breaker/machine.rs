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
mod tests;
