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
