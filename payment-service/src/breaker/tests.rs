use super::*;

/// A clock the test moves.
fn clock() -> (Clock, Arc<Mutex<Instant>>) {
    let now = Arc::new(Mutex::new(Instant::now()));
    let reader = now.clone();
    (Arc::new(move || *reader.lock().unwrap()), now)
}

fn breaker(failures: u32) -> (Arc<Breaker>, Arc<Mutex<Instant>>) {
    let (clock, now) = clock();
    let settings = Settings {
        failures,
        open_for: Duration::from_secs(5),
    };
    (Breaker::with_clock(settings, clock), now)
}

fn fail(breaker: &Arc<Breaker>, reason: &str) {
    breaker.let_through().expect("closed").record(Some(reason));
}

#[test]
fn the_snapshot_follows_the_transitions_with_the_tripping_failure() {
    let (breaker, now) = breaker(2);
    let changes = breaker.watch();
    fail(&breaker, "provider answered 503");
    assert_eq!(breaker.snapshot().state, State::Closed);
    fail(&breaker, "no answer in time");
    let open = breaker.snapshot();
    assert_eq!(open.state, State::Open);
    assert_eq!(open.failure.as_deref(), Some("no answer in time"));
    assert!(changes.has_changed().unwrap());
    assert!(breaker.let_through().is_none());
    assert!(matches!(breaker.gate(), (Gate::Wait(Some(_)), None)));

    *now.lock().unwrap() += Duration::from_secs(5);
    let (gate, probe) = breaker.gate();
    assert_eq!(gate, Gate::Probe);
    let probe = probe.expect("the probe's permit");
    assert!(probe.is_probe());
    assert_eq!(breaker.snapshot().state, State::HalfOpen);
    assert_eq!(
        breaker.snapshot().failure.as_deref(),
        Some("no answer in time")
    );
    probe.record(None);
    assert_eq!(breaker.snapshot().state, State::Closed);
    assert_eq!(breaker.snapshot().failure, None);
}

#[test]
fn a_probe_permit_dropped_unused_gives_the_probe_back() {
    let (breaker, now) = breaker(1);
    fail(&breaker, "provider answered 500");
    *now.lock().unwrap() += Duration::from_secs(5);
    let (_, probe) = breaker.gate();
    assert!(probe.is_some());
    assert!(matches!(breaker.gate(), (Gate::Wait(None), None)));
    drop(probe);
    assert!(matches!(breaker.gate(), (Gate::Probe, Some(_))));
}

#[test]
fn a_permit_of_a_closed_breaker_dropped_unused_changes_nothing() {
    let (breaker, _) = breaker(1);
    drop(breaker.let_through());
    assert_eq!(breaker.snapshot().state, State::Closed);
    assert!(matches!(breaker.gate(), (Gate::Pass, None)));
}

#[test]
fn a_breaker_that_is_off_lets_everything_through() {
    let breaker = Breaker::off();
    for _ in 0..100 {
        fail(&breaker, "simulator: database unavailable");
    }
    assert!(matches!(breaker.gate(), (Gate::Pass, None)));
    assert_eq!(breaker.snapshot().state, State::Closed);
}
