//! CONTRACT §13: the circuit breaker in front of the payment provider, against the tests'
//! own provider stub. An outage of the provider (503 to everything, or no answer at all) is
//! probed, not hammered: the provider hears the calls that were in flight when the breaker
//! tripped and one probe per open period, where without the breaker every due payment keeps
//! knocking. Waiting is not failing: while it is open, payments keep their open attempt and
//! key, none fails and nothing is dead-lettered; when it closes every order completes,
//! charged exactly once under its first attempt's key. Declines never open it; a SIGKILL
//! while it is open loses nothing; the saga timeout still ends orders that wait too long
//! (and a charge that went through is refunded once); two replicas probe once each per open
//! period; the dashboard shows "payment provider: unavailable" while any replica's breaker
//! is open.

use futures_util::future::join_all;
use saga_tests::browser::Browser;
use saga_tests::contract::breaker::{
    FAILURES_VAR, OPEN_GAUGE, OPEN_MS_VAR, READY_FIELD, TRANSITIONS,
};
use saga_tests::provider_stub::{Fault, ProviderStub};
use saga_tests::stack::{Instance, StackBuilder, TEST_ADMIN_TOKEN};
use saga_tests::{Service, TestStack, eventually};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a provider call may take before its outcome is unknown, in these tests.
const PROVIDER_TIMEOUT_MS: &str = "1000";
/// The breaker's first open period, in these tests (it doubles per failed probe).
const OPEN: Duration = Duration::from_secs(1);
/// A breaker that never opens: the "without" of the figures.
const NEVER: &str = "1000000000";

/// A stack whose payment-service charges through `stub` and opens its breaker after
/// `failures` unknown outcomes in a row. Retries of an unknown outcome start at 1 s, so
/// no payment is asked twice in the moment it takes the breaker to trip, and sagas may
/// wait minutes.
fn with_breaker(stub: &ProviderStub, failures: &str) -> StackBuilder {
    TestStack::builder()
        .service_env(Service::Payment, "PAYMENT_PROVIDER_URL", &stub.url())
        .service_env(
            Service::Payment,
            "PAYMENT_PROVIDER_TIMEOUT_MS",
            PROVIDER_TIMEOUT_MS,
        )
        .service_env(Service::Payment, "PAYMENT_RETRY_BASE_MS", "1000")
        .service_env(Service::Payment, FAILURES_VAR, failures)
        .service_env(Service::Payment, OPEN_MS_VAR, &OPEN.as_millis().to_string())
        .service_env(Service::Order, "SAGA_TIMEOUT_SECS", "300")
}

/// A provider outage the test switches on and off: while on, every request meets `fault`.
struct Outage {
    on: Arc<AtomicBool>,
    began: Option<Instant>,
}

impl Outage {
    fn install(stub: &ProviderStub, fault: Fault) -> Self {
        let on = Arc::new(AtomicBool::new(false));
        let flag = on.clone();
        stub.set_faults(move |_| flag.load(Ordering::SeqCst).then_some(fault));
        Self { on, began: None }
    }

    fn begin(&mut self) {
        self.began = Some(Instant::now());
        self.on.store(true, Ordering::SeqCst);
    }

    /// Ends it; returns when it began and ended.
    fn end(&mut self) -> (Instant, Instant) {
        self.on.store(false, Ordering::SeqCst);
        (self.began.expect("the outage began"), Instant::now())
    }
}

fn id_of(order: &Value) -> String {
    order["id"].as_str().expect("an order id").to_owned()
}

/// Places `count` orders of one product-A each, all at once.
async fn place_orders(stack: &TestStack, count: usize, customer: &str) -> Vec<Value> {
    join_all((0..count).map(|n| {
        let customer = format!("{customer}-{n}");
        async move {
            stack
                .place_order(&customer, &[("product-A", 1)], 12.5)
                .await
        }
    }))
    .await
}

/// The `provider` field of one payment-service process's `/ready` (which stays 200).
async fn ready_provider(stack: &TestStack, instance: &Instance) -> Result<String, String> {
    let response = stack
        .http
        .get(format!("http://{}/ready", instance.addr))
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|error| error.to_string())?;
    if !status.is_success() {
        return Err(format!("/ready answered {status}: {body}"));
    }
    body[READY_FIELD]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {READY_FIELD:?} in {body}"))
}

/// Waits until every payment-service process's `/ready` says its breaker is `state`.
async fn await_breakers(stack: &TestStack, state: &str) {
    eventually(
        &format!("every payment-service breaker to be {state}"),
        Duration::from_secs(60),
        || async {
            let mut seen = Vec::new();
            for instance in stack.instances(Service::Payment) {
                seen.push(ready_provider(stack, instance).await?);
            }
            if seen.iter().all(|s| s == state) {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        },
    )
    .await;
}

/// A counter's value for one label value, summed over the service's processes.
async fn transitions_to(stack: &TestStack, to: &str) -> f64 {
    let mut total = 0.0;
    for instance in stack.instances(Service::Payment) {
        let text = stack
            .http
            .get(format!("http://{}/metrics", instance.addr))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text");
        total += text
            .lines()
            .filter(|line| {
                line.starts_with(&format!("{TRANSITIONS}{{"))
                    && line.contains(&format!("to=\"{to}\""))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    total
}

/// How many probes one breaker can send in `window`: its open periods (1, 2, 4, … times
/// [`OPEN`]) that can end inside it, wherever it starts, plus one for a probe under way.
fn probes_within(window: Duration) -> usize {
    let mut probes = 1;
    let mut period = OPEN;
    let mut covered = Duration::ZERO;
    while covered + period <= window {
        covered += period;
        period *= 2;
        probes += 1;
    }
    probes
}

/// Every payment waits, `PENDING`, with at most its first attempt made — the work an
/// outage strikes.
async fn assert_payments_wait(stack: &TestStack, orders: &[Value]) {
    for order in orders {
        let id = id_of(order);
        let payment = eventually(
            &format!("the payment of {id} to be recorded"),
            Duration::from_secs(60),
            || async {
                stack
                    .try_payment(&id)
                    .await?
                    .ok_or_else(|| "no payment yet".to_owned())
            },
        )
        .await;
        assert_eq!(payment["status"], "PENDING", "{payment}");
        assert!(
            payment["attempts"].as_u64() <= Some(1),
            "an attempt was used up while waiting: {payment}"
        );
    }
}

/// After the outage: every order completed, charged once, with one attempt under the key
/// `<order_id>:1` — the same key before and after the outage, none used up by waiting.
async fn assert_completed_on_first_keys(stack: &TestStack, stub: &ProviderStub, orders: &[Value]) {
    for order in stack.final_orders(orders).await {
        let id = id_of(&order);
        assert_eq!(order["status"], "COMPLETED", "{order}");
        let payment = stack.payment(&id).await.expect("a payment");
        assert_eq!(payment["attempts"], 1, "{payment}");
        let charge = stub
            .charges()
            .into_iter()
            .find(|c| c.order_id == id)
            .expect("a charge");
        assert_eq!(charge.key, format!("{id}:1"));
        assert_eq!(stub.tries_of(&format!("{id}:2")), 0);
    }
    stub.assert_charged_once(stack).await;
}

/// What one outage of `duration` with 50 payments due came to.
struct Figures {
    /// Requests the provider received while it was down.
    during: usize,
    /// Of those, the ones that came once the breaker was seen open (a second later):
    /// only probes, with the breaker on.
    after_trip: usize,
    /// How long that part of the outage lasted.
    after_trip_window: Duration,
}

/// 50 orders, each due for payment while the provider meets `fault` for `duration`; then
/// the provider recovers and every order completes, charged once under its first key.
async fn outage_with_50_due(fault: Fault, duration: Duration, failures: &str) -> Figures {
    let stub = ProviderStub::start().await;
    let mut outage = Outage::install(&stub, fault);
    let mut stack = with_breaker(&stub, failures).start().await;
    stack.set_stock("product-A", 100).await;
    let breaker_on = failures != NEVER;

    outage.begin();
    let orders = place_orders(&stack, 50, "outage").await;
    // The strike: every payment due and waiting, none past its first attempt, no order
    // ended, the breaker open (with it) — and /ready still 200.
    if breaker_on {
        await_breakers(&stack, "open").await;
        assert_eq!(stack.metric_sum(Service::Payment, OPEN_GAUGE).await, 1.0);
    }
    let seen_open = Instant::now();
    assert_payments_wait(&stack, &orders).await;
    stack.assert_pending(&orders).await;
    // Keep the outage on for its whole length, new payments arriving meanwhile.
    let load = place_orders(&stack, 5, "during").await;
    let remaining = duration.saturating_sub(outage.began.unwrap().elapsed());
    tokio::time::sleep(remaining).await;
    stack.assert_pending(&orders).await;
    let (began, ended) = outage.end();
    let after_trip_from = seen_open + Duration::from_secs(1);
    let figures = Figures {
        during: stub.calls_between(began, ended),
        after_trip: stub.calls_between(after_trip_from, ended),
        after_trip_window: ended.saturating_duration_since(after_trip_from),
    };
    eprintln!(
        "outage of {duration:?}, 50 payments due, {} {failures}: {} provider calls during it, {} in its last {:?}",
        FAILURES_VAR, figures.during, figures.after_trip, figures.after_trip_window
    );

    let all: Vec<Value> = orders.iter().chain(&load).cloned().collect();
    assert_completed_on_first_keys(&stack, &stub, &all).await;
    if breaker_on {
        await_breakers(&stack, "closed").await;
        assert_eq!(stack.metric_sum(Service::Payment, OPEN_GAUGE).await, 0.0);
        assert!(transitions_to(&stack, "open").await >= 1.0);
        assert!(transitions_to(&stack, "closed").await >= 1.0);
        let logs = stack.logs(Service::Payment);
        let opened = logs
            .lines()
            .find(|line| line.contains("circuit breaker opened"))
            .expect("a WARN line when the breaker opened");
        assert!(opened.contains("WARN"), "{opened}");
        let tripping = match fault {
            Fault::Hang(_) => "no answer in time",
            _ => "provider answered 503",
        };
        assert!(
            opened.contains(tripping),
            "the tripping failure is not in {opened}"
        );
        assert!(opened.contains("order_id"), "no order in {opened}");
        assert!(
            logs.lines()
                .any(|line| line.contains("circuit breaker closed") && line.contains("INFO")),
            "no INFO line when the breaker closed"
        );
    } else {
        assert_eq!(transitions_to(&stack, "open").await, 0.0);
    }
    stack.cleanup().await;
    figures
}

#[tokio::test]
async fn a_provider_answering_503_for_20_s_is_probed_not_hammered_and_every_order_is_charged_once()
{
    let figures = outage_with_50_due(Fault::Unavailable, Duration::from_secs(20), "5").await;
    // The calls in flight when it tripped (at most one per payment: the first try of each
    // first attempt) and one probe per open period.
    let probes = probes_within(Duration::from_secs(20));
    assert!(
        figures.during <= 50 + probes,
        "{} calls into the outage; at most {} expected",
        figures.during,
        50 + probes
    );
    let late = probes_within(figures.after_trip_window);
    assert!(
        figures.after_trip <= late,
        "{} calls once the breaker was open; at most {late} probes expected",
        figures.after_trip
    );
}

#[tokio::test]
async fn without_the_breaker_every_due_payment_keeps_knocking_through_the_outage() {
    // The same outage with a breaker that never opens: what the breaker saves.
    let figures = outage_with_50_due(Fault::Unavailable, Duration::from_secs(20), NEVER).await;
    assert!(
        figures.during >= 3 * 50,
        "only {} calls into the outage without the breaker",
        figures.during
    );
    assert!(figures.after_trip >= 50, "{}", figures.after_trip);
}

#[tokio::test]
async fn a_provider_that_hangs_is_probed_not_hammered_and_every_order_is_charged_once() {
    // No answer at all: each call costs the client its timeout (1 s) before it is unknown.
    let figures = outage_with_50_due(
        Fault::Hang(Duration::from_secs(30)),
        Duration::from_secs(15),
        "5",
    )
    .await;
    let probes = probes_within(Duration::from_secs(15));
    assert!(
        figures.during <= 50 + probes,
        "{} calls into the outage; at most {} expected",
        figures.during,
        50 + probes
    );
    let late = probes_within(figures.after_trip_window);
    assert!(
        figures.after_trip <= late,
        "{} calls once the breaker was open; at most {late} probes expected",
        figures.after_trip
    );
}

#[tokio::test]
async fn declines_are_answers_and_never_open_the_breaker() {
    let stub = ProviderStub::start().await;
    stub.set_declines(|_, _| true);
    // One unknown outcome would open it; a hundred percent declines must not.
    let mut stack = with_breaker(&stub, "1")
        .service_env(Service::Payment, "PAYMENT_RETRY_BASE_MS", "20")
        .start()
        .await;
    stack.set_stock("product-A", 100).await;
    let orders = place_orders(&stack, 10, "declined").await;
    for order in stack.final_orders(&orders).await {
        let id = id_of(&order);
        assert_eq!(order["status"], "CANCELLED", "{order}");
        assert_eq!(order["cancellation_reason"], "PAYMENT_FAILED", "{order}");
        // Three attempts, each asked once: no attempt was held back or repeated.
        for attempt in 1..=3 {
            assert_eq!(
                stub.tries_of(&format!("{id}:{attempt}")),
                1,
                "{id}:{attempt}"
            );
        }
        let payment = stack.payment(&id).await.expect("a payment");
        assert_eq!(payment["status"], "FAILED", "{payment}");
    }
    assert_eq!(stub.charges().len(), 30);
    await_breakers(&stack, "closed").await;
    assert_eq!(stack.metric_sum(Service::Payment, OPEN_GAUGE).await, 0.0);
    assert_eq!(transitions_to(&stack, "open").await, 0.0);
    assert!(
        !stack
            .logs(Service::Payment)
            .contains("circuit breaker opened"),
        "a decline opened the breaker"
    );
    stub.assert_charged_once(&stack).await;
    stack.cleanup().await;
}

#[tokio::test]
async fn killing_payment_service_while_its_breaker_is_open_loses_nothing() {
    let stub = ProviderStub::start().await;
    let mut outage = Outage::install(&stub, Fault::Unavailable);
    let mut stack = with_breaker(&stub, "3").start().await;
    stack.set_stock("product-A", 100).await;
    outage.begin();
    let first = place_orders(&stack, 20, "before-kill").await;
    await_breakers(&stack, "open").await;
    // The strike: the breaker open, every payment waiting within its first attempt.
    assert_payments_wait(&stack, &first).await;
    stack.assert_pending(&first).await;
    stack.kill(Service::Payment).await;

    // Load goes on while payment-service is dead: these wait in its queue.
    let during = place_orders(&stack, 10, "while-dead").await;
    stack.await_queued(Service::Payment, 10).await;
    stack.restart(Service::Payment, 1).await;
    // A new process starts closed, finds the provider still down and opens again.
    await_breakers(&stack, "open").await;
    assert_payments_wait(&stack, &during).await;
    stack.assert_pending(&first).await;
    outage.end();

    let all: Vec<Value> = first.iter().chain(&during).cloned().collect();
    assert_completed_on_first_keys(&stack, &stub, &all).await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_saga_timeout_while_the_breaker_is_open_cancels_and_a_charge_is_refunded_once() {
    let stub = ProviderStub::start().await;
    let mut outage = Outage::install(&stub, Fault::Unavailable);
    let mut stack = with_breaker(&stub, "2")
        .service_env(Service::Order, "SAGA_TIMEOUT_SECS", "5")
        .start()
        .await;
    stack.set_stock("product-A", 100).await;
    outage.begin();
    let orders = place_orders(&stack, 10, "timeout").await;
    await_breakers(&stack, "open").await;
    assert_payments_wait(&stack, &orders).await;
    stack.assert_pending(&orders).await;
    // Only the saga timeout ends them. The breaker fails no payment: one whose attempt was
    // asked keeps waiting for its outcome; one never asked may end, cancelled, without a
    // call (its row needs no provider).
    for order in stack.final_orders(&orders).await {
        let id = id_of(&order);
        assert_eq!(order["status"], "CANCELLED", "{order}");
        assert_eq!(order["cancellation_reason"], "TIMEOUT", "{order}");
        let payment = stack.payment(&id).await.expect("a payment");
        if stub.tries_of(&format!("{id}:1")) > 0 {
            assert_eq!(payment["status"], "PENDING", "{payment}");
        } else {
            assert!(
                matches!(payment["status"].as_str(), Some("PENDING" | "FAILED")),
                "{payment}"
            );
        }
    }
    let asked_before = stub
        .received()
        .iter()
        .filter(|r| r.key.ends_with(":1"))
        .count();
    assert!(
        asked_before > 0,
        "no first attempt went out before the breaker opened"
    );
    outage.end();

    // An attempt asked before the outage is asked again under its key and, charged now,
    // refunded once; one never asked fails without a call.
    stub.assert_charged_once(&stack).await;
    for order in &orders {
        let id = id_of(order);
        let payment = stack.payment(&id).await.expect("a payment");
        let charged = stub.charges().iter().any(|c| c.order_id == id);
        let expected = if charged { "REFUNDED" } else { "FAILED" };
        assert_eq!(payment["status"], expected, "{payment}");
        assert_eq!(stub.tries_of(&format!("{id}:2")), 0);
    }
    assert_eq!(stub.refunds().len(), stub.charges().len());
    stack.cleanup().await;
}

#[tokio::test]
async fn two_replicas_each_probe_once_per_open_period() {
    let stub = ProviderStub::start().await;
    let mut outage = Outage::install(&stub, Fault::Unavailable);
    let mut stack = with_breaker(&stub, "2")
        .replicas(Service::Payment, 2)
        .start()
        .await;
    stack.set_stock("product-A", 100).await;
    outage.begin();
    let orders = place_orders(&stack, 30, "replicas").await;
    // Both open: while one holds its calls back the other claims the due rows, calls, and
    // trips too.
    await_breakers(&stack, "open").await;
    assert_payments_wait(&stack, &orders).await;
    stack.assert_pending(&orders).await;
    let (status, breakers) = stack.get_json(Service::Payment, "/breaker").await;
    assert!(status.is_success(), "{breakers}");
    assert_eq!(breakers["provider"], "unavailable", "{breakers}");
    assert_eq!(
        breakers["replicas"].as_array().map(Vec::len),
        Some(2),
        "{breakers}"
    );

    let from = Instant::now() + Duration::from_secs(1);
    let window = Duration::from_secs(12);
    tokio::time::sleep(window + Duration::from_secs(1)).await;
    let calls = stub.calls_between(from, from + window);
    let bound = 2 * probes_within(window);
    eprintln!("two replicas, provider down: {calls} calls in {window:?} (bound {bound})");
    assert!(
        calls <= bound,
        "{calls} calls in {window:?} from two open breakers; at most {bound} probes expected"
    );
    outage.end();
    assert_completed_on_first_keys(&stack, &stub, &orders).await;
    stack.cleanup().await;
}

#[tokio::test]
async fn the_dashboard_shows_the_provider_unavailable_while_any_replica_s_breaker_is_open() {
    let stub = ProviderStub::start().await;
    let mut outage = Outage::install(&stub, Fault::Unavailable);
    // The first replica (the one order-service asks) never opens. A second one charges
    // through a provider that is down for good, opens at its first unknown outcome and
    // stays open a minute at a time, whatever the first provider does.
    let down = ProviderStub::start().await;
    down.set_faults(|_| Some(Fault::Unavailable));
    let mut stack = with_breaker(&stub, NEVER).start().await;
    stack
        .add_replica_with_env(
            Service::Payment,
            &[
                ("PAYMENT_PROVIDER_URL", &down.url()),
                (FAILURES_VAR, "1"),
                (OPEN_MS_VAR, "60000"),
            ],
        )
        .await;
    stack.set_stock("product-A", 100).await;
    outage.begin();
    let orders = place_orders(&stack, 10, "dashboard-breaker").await;
    eventually(
        "the second replica's breaker to open",
        Duration::from_secs(60),
        || async {
            let replicas = stack.instances(Service::Payment);
            let states = (
                ready_provider(&stack, &replicas[0]).await?,
                ready_provider(&stack, &replicas[1]).await?,
            );
            match states {
                (closed, open) if closed == "closed" && open == "open" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    stack.assert_pending(&orders).await;
    // A replica records its breaker's change in the database just after it happens, so the
    // shared view catches up with the second replica's `/ready` a moment later.
    eventually(
        "GET /breaker to show both replicas, one open",
        Duration::from_secs(10),
        || async {
            let (_, breakers) = stack.get_json(Service::Payment, "/breaker").await;
            let mut states: Vec<&str> = breakers["replicas"]
                .as_array()
                .expect("replicas")
                .iter()
                .filter_map(|r| r["state"].as_str())
                .collect();
            states.sort();
            if breakers["provider"] == "unavailable" && states == ["closed", "open"] {
                Ok(())
            } else {
                Err(breakers.to_string())
            }
        },
    )
    .await;

    let browser = Browser::start().await;
    browser.open(&stack.url(Service::Order, "/")).await;
    let provider_text = || async {
        let text = browser
            .eval("return document.getElementById('payment-provider').textContent")
            .await;
        text.as_str().unwrap_or_default().to_owned()
    };
    let shows = |wanted: &'static str| {
        let provider_text = &provider_text;
        async move {
            eventually(
                &format!("the dashboard to show {wanted:?}"),
                Duration::from_secs(30),
                || async {
                    let text = provider_text().await;
                    if text == wanted { Ok(()) } else { Err(text) }
                },
            )
            .await;
        }
    };
    shows("payment provider: unavailable").await;
    for path in saga_tests::browser::screenshot_paths(&stack, "dashboard-provider-unavailable.png")
    {
        browser.screenshot(&path).await;
    }

    // The provider is back: the replica whose breaker is closed charges every order. The
    // other's provider is still down; its breaker never closes.
    outage.end();
    for order in stack.final_orders(&orders).await {
        assert_eq!(order["status"], "COMPLETED", "{order}");
    }
    let other = ready_provider(&stack, &stack.instances(Service::Payment)[1]).await;
    assert!(
        matches!(other.as_deref(), Ok("open" | "half_open")),
        "{other:?}"
    );
    // The replica with the open breaker dies; once its row is stale, every live breaker is
    // closed.
    stack.kill_one(Service::Payment, 1).await;
    shows("payment provider: available").await;
    drop(browser);
    stub.assert_charged_once(&stack).await;
    stack.cleanup().await;
}

#[tokio::test]
async fn the_breakers_states_are_public_and_their_detail_needs_the_admin_token() {
    let stub = ProviderStub::start().await;
    let mut outage = Outage::install(&stub, Fault::Unavailable);
    let mut stack = with_breaker(&stub, "1").start().await;
    stack.set_stock("product-A", 100).await;
    outage.begin();
    let orders = place_orders(&stack, 3, "breaker-detail").await;
    await_breakers(&stack, "open").await;
    let read = |token: Option<&'static str>| {
        let mut request = reqwest::Client::new().get(stack.url(Service::Payment, "/breaker"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.expect("payment-service answers");
            assert!(response.status().is_success(), "{}", response.status());
            response.json::<Value>().await.expect("JSON")
        }
    };
    // The shared view records the open breaker a moment after `/ready` says so.
    let detailed = eventually(
        "GET /breaker to show the open breaker with its failure",
        Duration::from_secs(10),
        || async {
            let breakers = read(Some(TEST_ADMIN_TOKEN)).await;
            let replica = &breakers["replicas"][0];
            if replica["state"] == "open" && replica["failure"].is_string() {
                Ok(breakers)
            } else {
                Err(breakers.to_string())
            }
        },
    )
    .await;
    let replica = &detailed["replicas"][0];
    assert!(
        replica["pid"].as_i64().is_some_and(|pid| pid > 0),
        "{detailed}"
    );
    assert!(
        replica["failure"].as_str().unwrap().contains("503"),
        "the provider's answer: {detailed}"
    );

    // Anyone else (no token, a wrong one) sees the same states and nothing of the hosts or
    // the provider's words.
    for token in [None, Some("not-the-admin-token-0123456789")] {
        let breakers = read(token).await;
        assert_eq!(breakers["provider"], "unavailable", "{breakers}");
        let replica = &breakers["replicas"][0];
        assert_eq!(replica["state"], "open", "{breakers}");
        assert!(replica["since"].is_string(), "{breakers}");
        for hidden in ["pid", "failure"] {
            assert!(
                replica.get(hidden).is_none(),
                "{token:?} sees {hidden}: {breakers}"
            );
        }
        let text = breakers.to_string();
        assert!(
            !text.contains("try again later") && !text.contains("provider answered"),
            "{text}"
        );
    }

    outage.end();
    for order in &orders {
        stack.final_order(&id_of(order)).await;
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}
