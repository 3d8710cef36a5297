//! A card processor of the tests' own, shaped as CONTRACT §7 says: `POST /v1/charges` and
//! `POST /v1/refunds` under an `Idempotency-Key`, each key's answer stored and given again
//! to every repeat. It keeps a ledger of what it charged and refunded — the outside world's
//! view, which the tests check — and injects the faults a real provider shows: a charge
//! answered with 500, a charge answered only after the client gave up, a 503 without
//! charging, slow answers.

use crate::eventually;
use crate::stack::TestStack;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
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
}

/// What the fault plan sees of a request.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub kind: Kind,
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
    /// Keys being worked on (a `Slow` request); a repeat meanwhile gets 409.
    in_progress: HashSet<String>,
    /// Distinct charge keys per order, in the order they came.
    keys_of_order: HashMap<String, Vec<String>>,
}

struct Stub {
    ledger: Mutex<Ledger>,
    faults: Mutex<FaultPlan>,
    declines: Mutex<DeclinePlan>,
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
        });
        let app = axum::Router::new()
            .route("/v1/charges", post(charge))
            .route("/v1/refunds", post(refund))
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

    /// Requests that carried `key`.
    pub fn tries_of(&self, key: &str) -> usize {
        self.received().iter().filter(|r| r.key == key).count()
    }

    /// Keys of requests still being worked on (a `Slow` fault).
    pub fn in_progress(&self) -> usize {
        self.stub
            .ledger
            .lock()
            .expect("not poisoned")
            .in_progress
            .len()
    }

    /// CONTRACT §7 from the provider's side, given how each order ended
    /// (`order_id → (status, total in cents)`): at most one succeeded charge per order; a
    /// `COMPLETED` order has exactly one, of its total, not refunded; a `CANCELLED` order has
    /// none, or one refunded exactly once; no refund of anything else.
    pub fn violations(&self, orders: &BTreeMap<String, (String, i64)>) -> Vec<String> {
        let ledger = self.stub.ledger.lock().expect("not poisoned");
        let mut found = Vec::new();
        let mut refunds_of: HashMap<&str, Vec<&Refund>> = HashMap::new();
        for refund in &ledger.refunds {
            refunds_of
                .entry(&refund.charge_id)
                .or_default()
                .push(refund);
            let refunded = ledger.charges.iter().find(|c| c.id == refund.charge_id);
            if !refunded.is_some_and(|c| c.succeeded && c.amount == refund.amount) {
                found.push(format!(
                    "refund {refund:?} is not of a succeeded charge of its amount"
                ));
            }
        }
        let mut succeeded: HashMap<&str, Vec<&Charge>> = HashMap::new();
        for charge in ledger.charges.iter().filter(|c| c.succeeded) {
            succeeded.entry(&charge.order_id).or_default().push(charge);
        }
        for (order_id, charges) in &succeeded {
            if charges.len() > 1 {
                found.push(format!(
                    "order {order_id} was charged {} times: {charges:?}",
                    charges.len()
                ));
            }
            if !orders.contains_key(*order_id) {
                found.push(format!("order {order_id} is unknown but was charged"));
            }
        }
        for (order_id, (status, total)) in orders {
            let charges = succeeded
                .get(order_id.as_str())
                .cloned()
                .unwrap_or_default();
            let refunds: Vec<&Refund> = charges
                .iter()
                .flat_map(|c| refunds_of.get(c.id.as_str()).cloned().unwrap_or_default())
                .collect();
            match status.as_str() {
                "COMPLETED" => {
                    let ok =
                        charges.len() == 1 && charges[0].amount == *total && refunds.is_empty();
                    if !ok {
                        found.push(format!(
                            "completed order {order_id} (total {total}) has charges {charges:?} and refunds {refunds:?}"
                        ));
                    }
                }
                "CANCELLED" => {
                    if !(charges.is_empty() || (charges.len() == 1 && refunds.len() == 1)) {
                        found.push(format!(
                            "cancelled order {order_id} has charges {charges:?} and refunds {refunds:?}"
                        ));
                    }
                }
                other => found.push(format!("order {order_id} is still {other}")),
            }
        }
        found
    }
}

impl ProviderStub {
    /// Waits until the system is quiet with CONTRACT §6 holding, then until the ledger
    /// agrees with how every order ended and with what payment-service shows
    /// (`charge_id`, `refund_id`).
    pub async fn assert_charged_once(&self, stack: &TestStack) {
        stack.assert_invariants().await;
        eventually(
            "the provider's ledger to agree with every order",
            Duration::from_secs(60),
            || async {
                let mut orders = BTreeMap::new();
                let mut found = Vec::new();
                for order in stack.all_orders().await {
                    let id = order["id"].as_str().unwrap_or_default().to_owned();
                    let cents =
                        (order["total_amount"].as_f64().unwrap_or_default() * 100.0).round() as i64;
                    let status = order["status"].as_str().unwrap_or_default().to_owned();
                    self.check_payment_view(&id, stack.payment(&id).await, &mut found);
                    orders.insert(id, (status, cents));
                }
                found.extend(self.violations(&orders));
                if found.is_empty() {
                    Ok(())
                } else {
                    Err(found.join("\n"))
                }
            },
        )
        .await;
    }

    /// payment-service shows the provider's ids: the succeeded charge, and its refund.
    fn check_payment_view(&self, order_id: &str, payment: Option<Value>, found: &mut Vec<String>) {
        let charge = self
            .charges()
            .into_iter()
            .find(|c| c.order_id == order_id && c.succeeded);
        let refund = charge
            .as_ref()
            .and_then(|c| self.refunds().into_iter().find(|r| r.charge_id == c.id));
        let shown = |field: &str| {
            payment
                .as_ref()
                .and_then(|p| p[field].as_str().map(str::to_owned))
        };
        if shown("charge_id") != charge.map(|c| c.id) || shown("refund_id") != refund.map(|r| r.id)
        {
            found.push(format!(
                "order {order_id}: payment {payment:?} does not show the provider's ids"
            ));
        }
    }
}

/// Runs `request` in its own task, so a client that times out does not cut it short.
async fn finish_even_if_abandoned(
    request: impl std::future::Future<Output = Response> + Send + 'static,
) -> Response {
    tokio::spawn(request)
        .await
        .unwrap_or_else(|_| answer(500, json!({"error": "stub failure"})))
}

fn answer(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(body),
    )
        .into_response()
}

/// Counts the request, logs it, and picks its fault.
fn arrive(stub: &Stub, kind: Kind, key: &str) -> Option<Fault> {
    let try_of_key = {
        let mut ledger = stub.ledger.lock().expect("not poisoned");
        ledger.received.push(Received {
            kind,
            key: key.to_owned(),
            at: Instant::now(),
        });
        ledger.received.iter().filter(|r| r.key == key).count() as u32
    };
    let info = RequestInfo {
        kind,
        key: key.to_owned(),
        try_of_key,
    };
    (stub.faults.lock().expect("not poisoned"))(&info)
}

/// The shared course of a request: faults before, the work (once per key), faults after.
async fn handle(
    stub: Arc<Stub>,
    kind: Kind,
    headers: HeaderMap,
    body: Value,
    work: impl FnOnce(&mut Ledger, &DeclinePlan, &str, &Value) -> (u16, Value),
) -> Response {
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return answer(400, json!({"error": "Idempotency-Key is required"}));
    };
    let fault = arrive(&stub, kind, &key);
    match fault {
        Some(Fault::Unavailable) => return answer(503, json!({"error": "try again later"})),
        Some(Fault::Refuse(status)) => return answer(status, json!({"error": "refused"})),
        Some(Fault::Slow(delay)) => {
            if !stub
                .ledger
                .lock()
                .expect("not poisoned")
                .in_progress
                .insert(key.clone())
            {
                return answer(
                    409,
                    json!({"error": "a request with this key is in progress"}),
                );
            }
            tokio::time::sleep(delay).await;
            stub.ledger
                .lock()
                .expect("not poisoned")
                .in_progress
                .remove(&key);
        }
        _ => {
            if stub
                .ledger
                .lock()
                .expect("not poisoned")
                .in_progress
                .contains(&key)
            {
                return answer(
                    409,
                    json!({"error": "a request with this key is in progress"}),
                );
            }
        }
    }
    // Look-up and work under one lock: two requests with one key never both do the work.
    let (status, reply) = {
        let mut ledger = stub.ledger.lock().expect("not poisoned");
        match ledger.answers.get(&key).cloned() {
            Some((first_body, _, _)) if first_body != body => (
                422,
                json!({"error": "idempotency key reused with another body"}),
            ),
            Some((_, status, reply)) => (status, reply),
            None => {
                let declines = stub.declines.lock().expect("not poisoned");
                let (status, reply) = work(&mut ledger, &declines, &key, &body);
                if status != 400 {
                    ledger
                        .answers
                        .insert(key.clone(), (body, status, reply.clone()));
                }
                (status, reply)
            }
        }
    };
    match fault {
        Some(Fault::ApplyThen500) => answer(500, json!({"error": "internal error"})),
        Some(Fault::ApplyThenAnswerAfter(delay)) => {
            tokio::time::sleep(delay).await;
            answer(status, reply)
        }
        _ => answer(status, reply),
    }
}

async fn charge(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    // Like a real provider, the stub finishes a request whose client has gone away.
    finish_even_if_abandoned(handle(
        stub,
        Kind::Charge,
        headers,
        body,
        |ledger, declines, key, body| {
            let (Some(order_id), Some(amount), Some("usd")) = (
                body["order_id"].as_str(),
                body["amount"].as_i64(),
                body["currency"].as_str(),
            ) else {
                return (
                    400,
                    json!({"error": "order_id, amount (cents) and currency usd are required"}),
                );
            };
            let keys = ledger.keys_of_order.entry(order_id.to_owned()).or_default();
            keys.push(key.to_owned());
            let attempt = keys.len() as u32;
            let declined = declines(order_id, attempt);
            let id = format!("ch_{}", ledger.charges.len() + 1);
            ledger.charges.push(Charge {
                key: key.to_owned(),
                order_id: order_id.to_owned(),
                amount,
                id: id.clone(),
                succeeded: !declined,
                at: Instant::now(),
            });
            if declined {
                (
                    402,
                    json!({"id": id, "status": "declined", "reason": "insufficient funds"}),
                )
            } else {
                (201, json!({"id": id, "status": "succeeded"}))
            }
        },
    ))
    .await
}

async fn refund(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    finish_even_if_abandoned(handle(
        stub,
        Kind::Refund,
        headers,
        body,
        |ledger, _, key, body| {
            let (Some(charge_id), Some(amount)) =
                (body["charge_id"].as_str(), body["amount"].as_i64())
            else {
                return (400, json!({"error": "charge_id and amount are required"}));
            };
            let refundable = ledger
                .charges
                .iter()
                .any(|c| c.id == charge_id && c.succeeded && c.amount >= amount);
            if !refundable {
                return (422, json!({"error": "no succeeded charge of that amount"}));
            }
            let id = format!("re_{}", ledger.refunds.len() + 1);
            ledger.refunds.push(Refund {
                key: key.to_owned(),
                charge_id: charge_id.to_owned(),
                amount,
                id: id.clone(),
            });
            (201, json!({"id": id, "status": "succeeded"}))
        },
    ))
    .await
}
