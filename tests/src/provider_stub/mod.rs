//! A card processor of the tests' own, shaped as CONTRACT §7 says: `POST /v1/charges` and
//! `POST /v1/refunds` under an `Idempotency-Key`, each key's answer stored and given again
//! to every repeat. It keeps a ledger of what it charged and refunded — the outside world's
//! view, which the tests check — and injects the faults a real provider shows: a charge
//! answered with 500, a charge answered only after the client gave up, a 503 without
//! charging, slow answers, no answer at all — and calls held until the test releases them,
//! so a test strikes while a call is provably in flight instead of racing a clock.
//!
//! Several payment-service replicas can each be given their own "door" (a path prefix of
//! the stub's URL, [`ProviderStub::door_url`]), so the ledger tells which replica asked.

//!
//! # Layout
//! - this module: the fault and ledger types, and the [`ProviderStub`] handle;
//! - `server`: the two endpoints, their stored answers and injected faults;
//! - `ledger_checks`: what the tests assert about the ledger.

mod ledger_checks;
mod server;

use axum::routing::post;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fault injected into one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Charge (or refund) and store the answer, then answer 500.
    ApplyThen500,
    /// Charge (or refund) and store the answer, but answer only after this long — meant to
    /// be longer than the client's timeout.
    ApplyThenAnswerAfter(Duration),
    /// Answer 503 without doing anything.
    Unavailable,
    /// Answer with this status (e.g. 409, 429, 422) without doing anything.
    Refuse(u16),
    /// Wait this long, then do the work and answer. A repeat of the key meanwhile gets 409,
    /// as with the big processors.
    Slow(Duration),
    /// Hold the request this long without answering (meant to be longer than the client's
    /// timeout), doing nothing, then answer 503: a provider that hangs.
    Hang(Duration),
    /// Hold the request until [`ProviderStub::release`], then do the work and answer: a
    /// slow provider whose slowness the test ends. A repeat of the key meanwhile gets 409.
    HoldThenApply,
    /// Do the work and store the answer at once, but answer only after
    /// [`ProviderStub::release`]: charged at the provider, not yet known to the client.
    ApplyThenHold,
}

/// What the fault plan sees of a request.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub kind: Kind,
    /// The door it came through: `""` for [`ProviderStub::url`], else the name given to
    /// [`ProviderStub::door_url`].
    pub door: String,
    pub key: String,
    /// 1 for the first request carrying this key, 2 for its first repeat, …
    pub try_of_key: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Charge,
    Refund,
}

/// A charge the stub made (declined ones too: they are stored answers).
#[derive(Debug, Clone)]
pub struct Charge {
    pub key: String,
    pub order_id: String,
    pub amount: i64,
    pub id: String,
    pub succeeded: bool,
    pub at: Instant,
}

#[derive(Debug, Clone)]
pub struct Refund {
    pub key: String,
    pub charge_id: String,
    pub amount: i64,
    pub id: String,
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub kind: Kind,
    pub key: String,
    /// The door it came through (see [`RequestInfo::door`]).
    pub door: String,
    pub at: Instant,
}

type FaultPlan = Box<dyn Fn(&RequestInfo) -> Option<Fault> + Send + Sync>;
/// `(order_id, attempt)` → decline? The attempt counts the order's distinct keys.
type DeclinePlan = Box<dyn Fn(&str, u32) -> bool + Send + Sync>;

#[derive(Default)]
struct Ledger {
    charges: Vec<Charge>,
    refunds: Vec<Refund>,
    received: Vec<Received>,
    /// Stored answers: key → (request body, status, answer).
    answers: HashMap<String, (Value, u16, Value)>,
    /// Keys being worked on (a `Slow` or `HoldThenApply` request); a repeat meanwhile gets
    /// 409.
    in_progress: HashSet<String>,
    /// Requests waiting for [`ProviderStub::release`] now: (door, key) of each.
    held: Vec<(String, String)>,
    /// Distinct charge keys per order, in the order they came.
    keys_of_order: HashMap<String, Vec<String>>,
}

struct Stub {
    ledger: Mutex<Ledger>,
    faults: Mutex<FaultPlan>,
    declines: Mutex<DeclinePlan>,
    /// Set by [`ProviderStub::release`]: held requests go on, and later holds do not wait.
    released: tokio::sync::watch::Sender<bool>,
}

/// The running stub; dropped, it stops.
pub struct ProviderStub {
    pub addr: SocketAddr,
    stub: Arc<Stub>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ProviderStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ProviderStub {
    /// Starts a stub that charges every attempt and injects no fault.
    pub async fn start() -> Self {
        let stub = Arc::new(Stub {
            ledger: Mutex::new(Ledger::default()),
            faults: Mutex::new(Box::new(|_| None)),
            declines: Mutex::new(Box::new(|_, _| false)),
            released: tokio::sync::watch::Sender::new(false),
        });
        let app = axum::Router::new()
            .route("/v1/charges", post(server::charge))
            .route("/v1/refunds", post(server::refund))
            .route("/{door}/v1/charges", post(server::charge_at))
            .route("/{door}/v1/refunds", post(server::refund_at))
            .with_state(stub.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let addr = listener.local_addr().expect("the bound address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, stub, task }
    }

    /// The value of `PAYMENT_PROVIDER_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `PAYMENT_PROVIDER_URL` of its own for one replica: the same provider, but each
    /// request records `door` (a path segment, e.g. `"replica-b"`).
    pub fn door_url(&self, door: &str) -> String {
        format!("http://{}/{door}", self.addr)
    }

    /// Requests held (by [`Fault::HoldThenApply`] or [`Fault::ApplyThenHold`]) right now,
    /// as (door, key).
    pub fn held(&self) -> Vec<(String, String)> {
        self.stub.ledger.lock().expect("not poisoned").held.clone()
    }

    /// Lets every held request go on, and every later hold pass at once.
    pub fn release(&self) {
        self.stub.released.send_replace(true);
    }

    /// Requests that came through `door`.
    pub fn received_at(&self, door: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.door == door)
            .collect()
    }

    /// Decides the fault of each request from now on.
    pub fn set_faults(&self, plan: impl Fn(&RequestInfo) -> Option<Fault> + Send + Sync + 'static) {
        *self.stub.faults.lock().expect("not poisoned") = Box::new(plan);
    }

    /// Decides which attempts are declined: `plan(order_id, attempt)`.
    pub fn set_declines(&self, plan: impl Fn(&str, u32) -> bool + Send + Sync + 'static) {
        *self.stub.declines.lock().expect("not poisoned") = Box::new(plan);
    }

    pub fn charges(&self) -> Vec<Charge> {
        self.stub
            .ledger
            .lock()
            .expect("not poisoned")
            .charges
            .clone()
    }

    pub fn refunds(&self) -> Vec<Refund> {
        self.stub
            .ledger
            .lock()
            .expect("not poisoned")
            .refunds
            .clone()
    }

    pub fn received(&self) -> Vec<Received> {
        self.stub
            .ledger
            .lock()
            .expect("not poisoned")
            .received
            .clone()
    }

    /// Requests (charges and refunds) that arrived from `from` until `to`.
    pub fn calls_between(&self, from: Instant, to: Instant) -> usize {
        self.received()
            .iter()
            .filter(|r| r.at >= from && r.at < to)
            .count()
    }

    /// Requests that carried `key`.
    pub fn tries_of(&self, key: &str) -> usize {
        self.received().iter().filter(|r| r.key == key).count()
    }

    /// Keys of requests still being worked on (a `Slow` or `HoldThenApply` fault).
    pub fn in_progress(&self) -> usize {
        self.stub
            .ledger
            .lock()
            .expect("not poisoned")
            .in_progress
            .len()
    }
}
