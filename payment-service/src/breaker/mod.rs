//! The circuit breaker in front of the payment provider (CONTRACT §13): each process counts
//! provider calls whose outcome is unknown; after `PAYMENT_BREAKER_FAILURES` in a row it
//! stops calling for `PAYMENT_BREAKER_OPEN_MS` (doubled per failed probe, at most 60 s),
//! then lets one probe through, and an answer closes it again.
//!
//! No provider call goes out without a [`Permit`]: the worker's loop asks [`Breaker::gate`]
//! before it claims rows (a claim starts an attempt, so an open breaker claims nothing),
//! and each step asks [`Breaker::let_through`] just before its call; a step refused there
//! gives its row back, attempt and key kept ([`crate::payments::hand_back`]).
//!
//! # Layout
//! - `machine`: the states and transitions, with the time passed in (unit-tested);
//! - this module: the shared, clocked [`Breaker`], its permits, and what a transition
//!   shows — the log lines, `payment_provider_breaker_open`,
//!   `payment_provider_breaker_transitions_total{to}`, and the [`Snapshot`] that `/ready`
//!   and the replica's row read;
//! - `replicas`: each process's state in the payment database, so `GET /breaker` can tell
//!   whether any live replica holds its calls back.

mod machine;
pub mod replicas;

pub use machine::{Gate, MAX_OPEN, Outcome, Settings, State};

use chrono::{DateTime, Utc};
use common::text_enum::TextEnum;
use machine::{Machine, Pass, Transition};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Tells the time; tests pass a clock they move themselves.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The breaker's state as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub state: State,
    /// When it entered this state.
    pub since: DateTime<Utc>,
    /// The unknown outcome that opened it last, while it is not closed.
    pub failure: Option<String>,
}

/// One process's breaker, shared by the worker's loop and its steps.
pub struct Breaker {
    /// `None`: off — every call passes (the built-in simulator, see [`Breaker::off`]).
    machine: Option<Mutex<Machine>>,
    clock: Clock,
    snapshot: watch::Sender<Snapshot>,
}

/// Leave to make one provider call. Report how it ended with [`Permit::record`]; a permit
/// dropped unused (no call was made) gives a half-open breaker's probe back.
#[must_use = "a permit is for one provider call; record its outcome"]
pub struct Permit {
    breaker: Arc<Breaker>,
    pass: Option<Pass>,
}

impl Breaker {
    pub fn new(settings: Settings) -> Arc<Self> {
        Self::with_clock(settings, Arc::new(Instant::now))
    }

    /// A breaker that tells the time by `clock`.
    pub fn with_clock(settings: Settings, clock: Clock) -> Arc<Self> {
        Self::build(Some(Mutex::new(Machine::new(settings))), clock)
    }

    /// A breaker that never opens. The built-in simulator gets this one: its only unknown
    /// outcome is an error of payment-service's own database, which is no reason to stop
    /// calling a provider, and the claim meets that error anyway.
    pub fn off() -> Arc<Self> {
        Self::build(None, Arc::new(Instant::now))
    }

    fn build(machine: Option<Mutex<Machine>>, clock: Clock) -> Arc<Self> {
        metrics::gauge!("payment_provider_breaker_open").set(0.0);
        for to in [State::Open, State::HalfOpen, State::Closed] {
            metrics::counter!("payment_provider_breaker_transitions_total", "to" => to.as_str())
                .increment(0);
        }
        let (snapshot, _) = watch::channel(Snapshot {
            state: State::Closed,
            since: Utc::now(),
            failure: None,
        });
        Arc::new(Self {
            machine,
            clock,
            snapshot,
        })
    }

    /// What the worker's loop may claim now: rows as usual, one row for the probe (whose
    /// permit comes with it), or nothing for a while.
    pub fn gate(self: &Arc<Self>) -> (Gate, Option<Permit>) {
        let Some(machine) = &self.machine else {
            return (Gate::Pass, None);
        };
        let mut machine = machine.lock().expect("breaker lock not poisoned");
        let (gate, transition) = machine.gate((self.clock)());
        if let Some(transition) = transition {
            self.show(&machine, transition, None);
        }
        let probe = (gate == Gate::Probe).then(|| Permit {
            breaker: self.clone(),
            pass: Some(Pass::Probe),
        });
        (gate, probe)
    }

    /// Leave for one call, if the breaker is closed.
    pub fn let_through(self: &Arc<Self>) -> Option<Permit> {
        let pass = match &self.machine {
            None => None,
            Some(machine) => Some(
                machine
                    .lock()
                    .expect("breaker lock not poisoned")
                    .let_through()?,
            ),
        };
        Some(Permit {
            breaker: self.clone(),
            pass,
        })
    }

    /// The state now, for `/ready` and the replica's row.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// Changes of [`Breaker::snapshot`].
    pub fn watch(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.subscribe()
    }

    fn record(&self, pass: Pass, outcome: Outcome, failure: Option<&str>) {
        let Some(machine) = &self.machine else { return };
        let mut machine = machine.lock().expect("breaker lock not poisoned");
        if let Some(transition) = machine.record(pass, outcome, (self.clock)()) {
            self.show(&machine, transition, failure);
        }
    }

    fn release_probe(&self) {
        if let Some(machine) = &self.machine {
            machine
                .lock()
                .expect("breaker lock not poisoned")
                .release_probe();
        }
    }

    /// Logs a transition and updates the metrics and the snapshot — under the breaker's
    /// lock, so they follow the transitions in order.
    fn show(&self, machine: &Machine, transition: Transition, failure: Option<&str>) {
        let state = machine.state();
        match transition {
            Transition::Opened {
                from: State::Closed,
                open_for,
            } => tracing::warn!(
                failure = failure.unwrap_or_default(),
                ?open_for,
                "payment provider circuit breaker opened: unknown outcomes in a row; no provider calls until it probes again, due payments wait with their attempt and key"
            ),
            Transition::Opened { open_for, .. } => tracing::warn!(
                failure = failure.unwrap_or_default(),
                ?open_for,
                "payment provider circuit breaker opened again: the probe's outcome is unknown"
            ),
            Transition::HalfOpened => tracing::info!(
                "payment provider circuit breaker half-open: letting one call through as a probe"
            ),
            Transition::Closed => tracing::info!(
                "payment provider circuit breaker closed: the provider answers again; waiting payments go out"
            ),
        }
        metrics::gauge!("payment_provider_breaker_open").set(if state == State::Open {
            1.0
        } else {
            0.0
        });
        metrics::counter!("payment_provider_breaker_transitions_total", "to" => state.as_str())
            .increment(1);
        let failure = match transition {
            Transition::Closed => None,
            Transition::HalfOpened => self.snapshot.borrow().failure.clone(),
            Transition::Opened { .. } => failure.map(str::to_owned),
        };
        self.snapshot.send_replace(Snapshot {
            state,
            since: Utc::now(),
            failure,
        });
    }
}

impl Permit {
    /// Reports how the call ended: `failure` is the reason of an unknown outcome, `None` for
    /// an answer.
    pub fn record(mut self, failure: Option<&str>) {
        if let Some(pass) = self.pass.take() {
            let outcome = match failure {
                Some(_) => Outcome::Failed,
                None => Outcome::Answered,
            };
            self.breaker.record(pass, outcome, failure);
        }
    }

    /// Whether this permit is the half-open breaker's one probe.
    pub fn is_probe(&self) -> bool {
        self.pass == Some(Pass::Probe)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.pass == Some(Pass::Probe) {
            self.breaker.release_probe();
        }
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit").field("pass", &self.pass).finish()
    }
}

/// How long the worker's loop sleeps when the breaker says wait and does not say how long
/// (the probe is out: its step rings the loop's bell when it ends).
pub const PROBE_WAIT: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests;
