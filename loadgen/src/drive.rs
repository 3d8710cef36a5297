//! Placing the orders: closed loop (at most `--concurrency` in flight) or open loop at
//! `--rate`, with a progress bar.

use crate::args::Args;
use crate::check::Stock;
use crate::watch::Watcher;
use common::events::LineItem;
use common::money::Money;
use common::quantity::Quantity;
use indicatif::{ProgressBar, ProgressStyle};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

/// One POST and what came of it.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The order id, when the POST answered 201.
    pub id: Option<Uuid>,
    pub status: u16,
    pub started: Instant,
    pub latency: Duration,
}

/// Everything the driver did.
pub struct Run {
    pub placed: Vec<Placed>,
    pub started: Instant,
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
        let items = pick_items(&args.products);
        let http = http.clone();
        let url = format!("{}/api/orders", args.order_urls[n % args.order_urls.len()]);
        let (posted_count, accepted) = (posted.clone(), ids.clone());
        tasks.spawn(async move {
            let placed = post(&http, &url, n, items).await;
            if let Some(id) = placed.id {
                accepted.lock().expect("not poisoned").push(id);
            }
            posted_count.fetch_add(1, Ordering::Relaxed);
            drop(permit);
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

/// The body of `POST /api/orders`, in `common`'s types.
#[derive(Serialize)]
struct NewOrder {
    customer_id: String,
    items: Vec<LineItem>,
    total_amount: Money,
}

/// The part of the 201 answer loadgen needs.
#[derive(Deserialize)]
struct Created {
    id: Uuid,
}

async fn post(http: &reqwest::Client, url: &str, n: usize, items: Vec<String>) -> Placed {
    let one = Quantity::try_from(1).expect("1 is a quantity");
    let body = NewOrder {
        customer_id: format!("loadgen-{}", n % 1000),
        items: items
            .into_iter()
            .map(|product_id| LineItem {
                product_id,
                quantity: one,
            })
            .collect(),
        total_amount: Money::from_cents(1000 + (n % 90) as i64 * 100),
    };
    let started = Instant::now();
    let answer = http.post(url).json(&body).send().await;
    let latency = started.elapsed();
    let (status, id) = match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            let id = if status == 201 {
                response.json::<Created>().await.ok().map(|order| order.id)
            } else {
                None
            };
            (status, id)
        }
        Err(_) => (0, None),
    };
    Placed {
        id,
        status,
        started,
        latency,
    }
}
