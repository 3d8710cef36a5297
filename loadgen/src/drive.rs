//! Placing the orders: closed loop (at most `--concurrency` in flight) or open loop at
//! `--rate`, with a progress bar. Every order carries an `Idempotency-Key` of its own
//! (CONTRACT §2); with `--retry-shed` a POST answered 503 (load shed, CONTRACT §9) is tried
//! again after its `Retry-After` with the same key and body.

mod order;

use crate::args::Args;
use crate::watch::Watcher;
use indicatif::{ProgressBar, ProgressStyle};
use order::{Retry, cancel, new_order, pick_items, place};
use rand::RngExt;
use saga_invariants::Stock;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

/// The status of a POST that got no answer (a transport error or loadgen's timeout).
pub const NO_ANSWER: u16 = 0;
/// The status of a POST the order-service shed (CONTRACT §9).
pub const SHED: u16 = 503;
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
