//! One order: its body, its POSTs (again after each 503 with `--retry-shed`, same key and
//! body), and its cancellation.

use super::{NO_ANSWER, Placed, SHED, Try};
use contract::events::LineItem;
use contract::money::Money;
use contract::quantity::Quantity;
use rand::RngExt;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// How long to wait before retrying a 503 that names no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// One or two distinct products, one unit each.
pub(super) fn pick_items(products: &[String]) -> Vec<String> {
    let mut rng = rand::rng();
    let first = rng.random_range(0..products.len());
    let mut items = vec![products[first].clone()];
    if products.len() > 1 && rng.random_bool(0.5) {
        let second = (first + rng.random_range(1..products.len())) % products.len();
        items.push(products[second].clone());
    }
    items
}

/// The body of `POST /api/orders`, in `contract`'s types.
#[derive(Serialize)]
pub(super) struct NewOrder {
    customer_id: String,
    items: Vec<LineItem>,
    total_amount: Money,
}

/// The `n`th order of the run.
pub(super) fn new_order(n: usize, items: Vec<String>) -> NewOrder {
    let one = Quantity::try_from(1).expect("1 is a quantity");
    NewOrder {
        customer_id: format!("loadgen-{}", n % 1000),
        items: items
            .into_iter()
            .map(|product_id| LineItem {
                product_id,
                quantity: one,
            })
            .collect(),
        total_amount: Money::from_cents(1000 + (n % 90) as i64 * 100),
    }
}

/// The part of the 201 answer loadgen needs.
#[derive(Deserialize)]
struct Created {
    id: Uuid,
}

/// How `--retry-shed` retries a 503.
#[derive(Clone)]
pub(super) struct Retry {
    /// How long after its first try an order may still be tried.
    pub budget: Duration,
    /// The slots to give back while backing off (open loop); `None` keeps the slot.
    pub slots: Option<Arc<Semaphore>>,
}

/// Places one order: POSTs it, and with `retry` POSTs it again after every 503 (same
/// `Idempotency-Key`, same body) until it is accepted, answered otherwise, or the retry
/// budget would be spent before the next try. `slot` is its place among `--concurrency`.
pub(super) async fn place(
    http: &reqwest::Client,
    url: &str,
    order: &NewOrder,
    retry: Option<&Retry>,
    slot: OwnedSemaphorePermit,
) -> Placed {
    let key = Uuid::new_v4().to_string();
    let started = Instant::now();
    let mut slot = Some(slot);
    let mut tries = Vec::new();
    loop {
        let (answer, id, retry_after) = post(http, url, order, &key).await;
        tries.push(answer);
        let Some(retry) = retry.filter(|_| answer.status == SHED) else {
            return Placed {
                id,
                started,
                tries,
                cancel: None,
            };
        };
        if started.elapsed() + retry_after > retry.budget {
            return Placed {
                id,
                started,
                tries,
                cancel: None,
            };
        }
        if let Some(slots) = &retry.slots {
            drop(slot.take());
            tokio::time::sleep(retry_after).await;
            slot = Some(slots.clone().acquire_owned().await.expect("never closed"));
        } else {
            tokio::time::sleep(retry_after).await;
        }
    }
}

/// Cancels order `id` (`POST {orders_url}/{id}/cancel`); returns the answer's status.
pub(super) async fn cancel(http: &reqwest::Client, orders_url: &str, id: Uuid) -> u16 {
    http.post(format!("{orders_url}/{id}/cancel"))
        .json(&json!({"reason": "loadgen --cancel-rate"}))
        .send()
        .await
        .map_or(NO_ANSWER, |response| response.status().as_u16())
}

/// One POST: its answer, the order id when it was accepted, and (for a 503) how long the
/// order-service asks to wait before trying again.
async fn post(
    http: &reqwest::Client,
    url: &str,
    order: &NewOrder,
    key: &str,
) -> (Try, Option<Uuid>, Duration) {
    let started = Instant::now();
    let answer = http
        .post(url)
        .header("Idempotency-Key", key)
        .json(order)
        .send()
        .await;
    let latency = started.elapsed();
    let Ok(response) = answer else {
        let no_answer = Try {
            status: NO_ANSWER,
            latency,
        };
        return (no_answer, None, DEFAULT_RETRY_AFTER);
    };
    let status = response.status().as_u16();
    let wait = retry_after(response.headers());
    let id = if matches!(status, 200 | 201) {
        response.json::<Created>().await.ok().map(|order| order.id)
    } else {
        None
    };
    (Try { status, latency }, id, wait)
}

/// The wait a `Retry-After` header asks for, in whole seconds (CONTRACT §9);
/// [`DEFAULT_RETRY_AFTER`] when it is missing or not a number of seconds (an HTTP date).
fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry_after: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_defaults_to_one() {
        assert_eq!(retry_after(&headers(Some("3"))), Duration::from_secs(3));
        assert_eq!(retry_after(&headers(Some(" 0 "))), Duration::ZERO);
        assert_eq!(retry_after(&headers(None)), DEFAULT_RETRY_AFTER);
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(retry_after(&headers(Some(date))), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after(&headers(Some("-1"))), DEFAULT_RETRY_AFTER);
    }
}
