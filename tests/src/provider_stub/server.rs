//! The stub's HTTP side: `POST /v1/charges` and `POST /v1/refunds`, each key's answer
//! stored and given again, and the injected faults played before or after the work.

use super::{Charge, DeclinePlan, Fault, Kind, Ledger, Received, Refund, RequestInfo, Stub};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

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
fn arrive(stub: &Stub, kind: Kind, door: &str, key: &str) -> Option<Fault> {
    let try_of_key = {
        let mut ledger = stub.ledger.lock().expect("not poisoned");
        ledger.received.push(Received {
            kind,
            key: key.to_owned(),
            door: door.to_owned(),
            at: Instant::now(),
        });
        ledger.received.iter().filter(|r| r.key == key).count() as u32
    };
    let info = RequestInfo {
        kind,
        door: door.to_owned(),
        key: key.to_owned(),
        try_of_key,
    };
    (stub.faults.lock().expect("not poisoned"))(&info)
}

/// Waits for [`super::ProviderStub::release`], listed in the ledger's `held` meanwhile.
async fn hold(stub: &Stub, door: &str, key: &str) {
    let mut released = stub.released.subscribe();
    let entry = (door.to_owned(), key.to_owned());
    stub.ledger
        .lock()
        .expect("not poisoned")
        .held
        .push(entry.clone());
    let _ = released.wait_for(|released| *released).await;
    let mut ledger = stub.ledger.lock().expect("not poisoned");
    if let Some(at) = ledger.held.iter().position(|held| *held == entry) {
        ledger.held.remove(at);
    }
}

fn in_progress_answer() -> Response {
    answer(
        409,
        json!({"error": "a request with this key is in progress"}),
    )
}

/// The shared course of a request: faults before, the work (once per key), faults after.
async fn handle(
    stub: Arc<Stub>,
    kind: Kind,
    door: String,
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
    let fault = arrive(&stub, kind, &door, &key);
    match fault {
        Some(Fault::Unavailable) => return answer(503, json!({"error": "try again later"})),
        Some(Fault::Refuse(status)) => return answer(status, json!({"error": "refused"})),
        Some(Fault::Hang(hold)) => {
            tokio::time::sleep(hold).await;
            return answer(503, json!({"error": "hung"}));
        }
        Some(Fault::Slow(_) | Fault::HoldThenApply) => {
            if !stub
                .ledger
                .lock()
                .expect("not poisoned")
                .in_progress
                .insert(key.clone())
            {
                return in_progress_answer();
            }
            match fault {
                Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
                _ => hold(&stub, &door, &key).await,
            }
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
                return in_progress_answer();
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
        Some(Fault::ApplyThenHold) => {
            hold(&stub, &door, &key).await;
            answer(status, reply)
        }
        _ => answer(status, reply),
    }
}

pub(super) async fn charge(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    charge_through(stub, String::new(), headers, body).await
}

/// `POST /{door}/v1/charges`: a replica's own door.
pub(super) async fn charge_at(
    State(stub): State<Arc<Stub>>,
    Path(door): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    charge_through(stub, door, headers, body).await
}

pub(super) async fn refund(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    refund_through(stub, String::new(), headers, body).await
}

/// `POST /{door}/v1/refunds`: a replica's own door.
pub(super) async fn refund_at(
    State(stub): State<Arc<Stub>>,
    Path(door): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    refund_through(stub, door, headers, body).await
}

async fn charge_through(
    stub: Arc<Stub>,
    door: String,
    headers: HeaderMap,
    body: Value,
) -> Response {
    // Like a real provider, the stub finishes a request whose client has gone away.
    finish_even_if_abandoned(handle(
        stub,
        Kind::Charge,
        door,
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

async fn refund_through(
    stub: Arc<Stub>,
    door: String,
    headers: HeaderMap,
    body: Value,
) -> Response {
    finish_even_if_abandoned(handle(
        stub,
        Kind::Refund,
        door,
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
