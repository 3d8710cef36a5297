//! CONTRACT §6 for the orders of this run, through the services' APIs: collects what the
//! shared checker ([`saga_invariants`], the one the end-to-end tests use) reads — every
//! order of the run with its payment and notifications, the stock against the stock before
//! the run, every service's dead-letter depth (none may hold any) — and lets it judge.
//! An answer that cannot be read is a violation, never "empty".

use crate::args::Args;
use crate::drive::Run;
use futures_util::{StreamExt, stream};
use reqwest::StatusCode;
use saga_invariants::{
    DeadLetters, Expected, Held, Notification, Observed, Order, Payment, Product, Seen,
    TimelineStep, completed_in,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// `product → (available, reserved)`.
pub use saga_invariants::Stock;

/// Parallel requests the check makes.
const CHECK_CONCURRENCY: usize = 32;

pub async fn stock(http: &reqwest::Client, inventory_url: &str) -> Result<Stock, String> {
    let products: Vec<Product> = get(http, &format!("{inventory_url}/api/inventory")).await?;
    Ok(saga_invariants::stock(products))
}

/// A `GET` that must answer 200 with a `T`.
async fn get<T: DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T, String> {
    get_unless_missing(http, url)
        .await?
        .ok_or_else(|| format!("{url}: {}", StatusCode::NOT_FOUND))
}

/// A `GET` that must answer 200 with a `T`, or 404 (`None`).
async fn get_unless_missing<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<Option<T>, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| format!("{url}: {e}"))?;
    match status {
        StatusCode::OK => saga_invariants::parse(url, &body).map(Some),
        StatusCode::NOT_FOUND => Ok(None),
        other => Err(format!("{url}: {other} {body}")),
    }
}

/// One order of the run and what the other services hold of it; `Err` when the order
/// itself cannot be read.
async fn look_up(http: &reqwest::Client, args: &Args, id: uuid::Uuid) -> Result<Seen, String> {
    let order: Order = get(http, &format!("{}/api/orders/{id}", args.order_url())).await?;
    let payment: Result<Option<Payment>, String> =
        get_unless_missing(http, &format!("{}/api/payments/{id}", args.payment_url)).await;
    let notifications: Result<Vec<Notification>, String> = get(
        http,
        &format!("{}/api/notifications?order_id={id}", args.notification_url),
    )
    .await;
    let completed_first = if order.cancelled_on_request() {
        get::<Vec<TimelineStep>>(
            http,
            &format!("{}/api/orders/{id}/events", args.order_url()),
        )
        .await
        .map(|timeline| completed_in(&timeline))
    } else {
        Ok(false)
    };
    Ok(Seen {
        order,
        payment,
        notifications,
        completed_first,
    })
}

/// What `GET /admin/dlq?limit=0` answers: the queue and how many letters it holds.
#[derive(Deserialize)]
struct DeadLetterDepth {
    queue: String,
    depth: u64,
}

/// Every violation of CONTRACT §6 for the orders of `run`, in words.
pub async fn invariants(
    http: &reqwest::Client,
    args: &Args,
    run: &Run,
    before: &Stock,
) -> Vec<String> {
    let looked_up: Vec<Result<Seen, String>> = stream::iter(run.placed_ids())
        .map(|id| look_up(http, args, id))
        .buffer_unordered(CHECK_CONCURRENCY)
        .collect()
        .await;
    let unreadable = looked_up.iter().filter(|seen| seen.is_err()).count();
    let orders = match unreadable {
        0 => Ok(looked_up.into_iter().flatten().collect()),
        unreadable => Err(format!(
            "{unreadable} of the run's orders, e.g. {}",
            looked_up
                .into_iter()
                .find_map(Result::err)
                .expect("one is unreadable")
        )),
    };
    let stock = stock(http, &args.inventory_url).await;
    let expected_stock = before
        .iter()
        .map(|(product, &(available, reserved))| {
            let expected = Expected {
                put_in: available + reserved,
                reserved_before: reserved,
            };
            (product.clone(), expected)
        })
        .collect();
    let mut dead_letters = Vec::new();
    for url in [
        args.order_url(),
        &args.inventory_url,
        &args.payment_url,
        &args.notification_url,
    ] {
        let answer = get::<DeadLetterDepth>(http, &format!("{url}/admin/dlq?limit=0")).await;
        dead_letters.push(match answer {
            Ok(dlq) => DeadLetters {
                queue: dlq.queue,
                held: Ok(Held::Depth(dlq.depth)),
                expected: Vec::new(),
            },
            Err(error) => DeadLetters {
                queue: format!("the dead-letter queue of {url}"),
                held: Err(error),
                expected: Vec::new(),
            },
        });
    }
    Observed {
        orders,
        stock,
        expected_stock,
        dead_letters,
    }
    .violations()
}
