//! Placing the orders: closed loop (at most `--concurrency` in flight) or open loop at
//! `--rate`, with a progress bar. Every order carries an `Idempotency-Key` of its own
//! (CONTRACT §2); with `--retry-shed` a POST answered 503 (load shed, CONTRACT §9) is tried
//! again after its `Retry-After` with the same key and body.

use crate::args::Args;
use crate::check::Stock;
use crate::watch::Watcher;
use contract::events::LineItem;
use contract::money::Money;
use contract::quantity::Quantity;
use indicatif::{ProgressBar, ProgressStyle};
use rand::RngExt;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

/// The status of a POST that got no answer (a transport error or loadgen's timeout).
pub const NO_ANSWER: u16 = 0;
/// The status of a POST the order-service shed (CONTRACT §9).
pub const SHED: u16 = 503;
/// How long to wait before retrying a 503 that names no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// A cancellation (`--cancel-rate`) comes within this long of the order's acceptance.
const CANCEL_WITHIN: Duration = Duration::from_secs(2);

/// One POST and its answer.
#[derive(Debug, Clone, Copy)]
pub struct Try {
    pub status: u16,
    pub latency: Duration,
}

/// One order: every POST it took and what came of it.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The order id, once a POST answered 201 (or 200, the replay of its key).
    pub id: Option<Uuid>,
    /// When its first POST started: a retried order's saga latency counts from here.
    pub started: Instant,
    /// Its POSTs in the order they were made; more than one only with `--retry-shed`.
    pub tries: Vec<Try>,
    /// With `--cancel-rate`: the answer to its cancellation, when one was asked for.
    pub cancel: Option<u16>,
}

/// Everything the driver did.
pub struct Run {
    pub placed: Vec<Placed>,
    pub started: Instant,
    /// When the last POST was answered.
    pub posted_until: Instant,
}

impl Run {
    pub fn placed_ids(&self) -> Vec<Uuid> {
        self.placed.iter().filter_map(|p| p.id).collect()
    }
}

/// Makes sure every product of the run has a unit for every order, whatever the mix.
pub async fn restock(http: &reqwest::Client, args: &Args, before: &Stock) -> Result<(), String> {
    for product in &args.products {
        let available = before.get(product).map(|(a, _)| *a).unwrap_or(0);
        let needed = args.orders as i64;
        if available >= needed {
            continue;
        }
        let url = format!("{}/api/inventory/{product}", args.inventory_url);
        let response = http
            .put(url)
            .json(&json!({"available": needed}))
            .send()
            .await
            .map_err(|e| format!("restocking {product}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("restocking {product}: {}", response.status()));
        }
    }
    Ok(())
}

pub async fn place_orders(http: &reqwest::Client, args: &Args, watcher: &Watcher) -> Run {
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.orders as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} {bar:40} {pos}/{len} posted, {msg}")
            .expect("a valid template"),
    );
    let posted = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(Semaphore::new(args.concurrency));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let retry = args.retry_shed.then(|| Retry {
        budget: args.settle_timeout(),
        // A closed-loop client keeps its slot while it backs off (see `--concurrency`).
        slots: args.rate.map(|_| in_flight.clone()),
    });

    for n in 0..args.orders {
        if let Some(rate) = args.rate {
            let due = started + Duration::from_secs_f64(n as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        let order = new_order(n, pick_items(&args.products));
        let http = http.clone();
        let url = format!("{}/api/orders", args.order_urls[n % args.order_urls.len()]);
        let (posted_count, accepted, retry) = (posted.clone(), ids.clone(), retry.clone());
        let cancel_after = (rand::rng().random::<f64>() < args.cancel_rate)
            .then(|| CANCEL_WITHIN.mul_f64(rand::rng().random::<f64>()));
        tasks.spawn(async move {
            let mut placed = place(&http, &url, &order, retry.as_ref(), permit).await;
            if let Some(id) = placed.id {
                accepted.lock().expect("not poisoned").push(id);
                posted_count.fetch_add(1, Ordering::Relaxed);
                if let Some(after) = cancel_after {
                    tokio::time::sleep(after).await;
                    placed.cancel = Some(cancel(&http, &url, id).await);
                }
            } else {
                posted_count.fetch_add(1, Ordering::Relaxed);
            }
            placed
        });
        if n % 64 == 0 {
            let known: Vec<Uuid> = ids.lock().expect("not poisoned").clone();
            bar.set_position(posted.load(Ordering::Relaxed) as u64);
            bar.set_message(format!("{} ended", watcher.ended_count(&known)));
        }
    }
    let mut placed = Vec::with_capacity(args.orders);
    while let Some(done) = tasks.join_next().await {
        placed.push(done.expect("a POST task does not panic"));
    }
    let posted_until = Instant::now();
    bar.finish_and_clear();
    Run {
        placed,
        started,
        posted_until,
    }
}

/// One or two distinct products, one unit each.
fn pick_items(products: &[String]) -> Vec<String> {
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
struct NewOrder {
    customer_id: String,
    items: Vec<LineItem>,
    total_amount: Money,
}

/// The `n`th order of the run.
fn new_order(n: usize, items: Vec<String>) -> NewOrder {
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
struct Retry {
    /// How long after its first try an order may still be tried.
    budget: Duration,
    /// The slots to give back while backing off (open loop); `None` keeps the slot.
    slots: Option<Arc<Semaphore>>,
}

/// Places one order: POSTs it, and with `retry` POSTs it again after every 503 (same
/// `Idempotency-Key`, same body) until it is accepted, answered otherwise, or the retry
/// budget would be spent before the next try. `slot` is its place among `--concurrency`.
async fn place(
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
async fn cancel(http: &reqwest::Client, orders_url: &str, id: Uuid) -> u16 {
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
