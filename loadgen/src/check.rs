//! CONTRACT §6 for the orders of this run, through the services' APIs: every order ended;
//! stock adds up and `reserved` grew by what completed orders took; completed orders have
//! one processed payment of their total and cancelled ones none; one final notification
//! each; no new dead letters.

use crate::args::Args;
use crate::drive::Run;
use futures_util::{StreamExt, stream};
use serde_json::Value;
use std::collections::BTreeMap;

/// `product → (available, reserved)`.
pub type Stock = BTreeMap<String, (i64, i64)>;

/// Parallel requests the check makes.
const CHECK_CONCURRENCY: usize = 32;

pub async fn stock(http: &reqwest::Client, inventory_url: &str) -> Result<Stock, String> {
    let products: Vec<Value> = get(http, &format!("{inventory_url}/api/inventory")).await?;
    Ok(products
        .iter()
        .map(|p| {
            let id = p["product_id"].as_str().unwrap_or_default().to_owned();
            (
                id,
                (
                    p["available"].as_i64().unwrap_or(0),
                    p["reserved"].as_i64().unwrap_or(0),
                ),
            )
        })
        .collect())
}

async fn get<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: {}", response.status()));
    }
    response.json().await.map_err(|e| format!("{url}: {e}"))
}

/// What one order looks like from every service.
struct Seen {
    order: Value,
    payment: Option<Value>,
    finals: usize,
}

async fn look_up(http: &reqwest::Client, args: &Args, id: uuid::Uuid) -> Result<Seen, String> {
    let order = get(http, &format!("{}/api/orders/{id}", args.order_url())).await?;
    let payment = http
        .get(format!("{}/api/payments/{id}", args.payment_url))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let payment = match payment.status().as_u16() {
        200 => Some(payment.json().await.map_err(|e| e.to_string())?),
        404 => None,
        other => return Err(format!("payment of {id}: {other}")),
    };
    let notifications: Vec<Value> = get(
        http,
        &format!("{}/api/notifications?order_id={id}", args.notification_url),
    )
    .await?;
    let finals = notifications
        .iter()
        .filter(|n| n["event_type"] == "OrderConfirmed" || n["event_type"] == "OrderCancelled")
        .count();
    Ok(Seen {
        order,
        payment,
        finals,
    })
}

pub async fn invariants(
    http: &reqwest::Client,
    args: &Args,
    run: &Run,
    before: &Stock,
) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let seen: Vec<Result<Seen, String>> = stream::iter(run.placed_ids())
        .map(|id| look_up(http, args, id))
        .buffer_unordered(CHECK_CONCURRENCY)
        .collect()
        .await;
    let mut taken: BTreeMap<String, i64> = BTreeMap::new();
    for seen in seen {
        let seen = seen?;
        let id = seen.order["id"].as_str().unwrap_or_default();
        let status = seen.order["status"].as_str().unwrap_or_default();
        match status {
            "COMPLETED" => {
                for item in seen.order["items"].as_array().into_iter().flatten() {
                    let product = item["product_id"].as_str().unwrap_or_default().to_owned();
                    *taken.entry(product).or_default() += item["quantity"].as_i64().unwrap_or(0);
                }
                let paid = seen.payment.as_ref().is_some_and(|p| {
                    p["status"] == "PROCESSED" && p["amount"] == seen.order["total_amount"]
                });
                if !paid {
                    problems.push(format!(
                        "completed order {id} has payment {:?}",
                        seen.payment
                    ));
                }
            }
            "CANCELLED" => {
                if seen
                    .payment
                    .as_ref()
                    .is_some_and(|p| p["status"] == "PROCESSED")
                {
                    problems.push(format!("cancelled order {id} has a PROCESSED payment"));
                }
            }
            other => problems.push(format!("order {id} is still {other}")),
        }
        if seen.finals != 1 {
            problems.push(format!(
                "order {id} has {} final notifications",
                seen.finals
            ));
        }
    }
    let after = stock(http, &args.inventory_url).await?;
    for (product, (available, reserved)) in &after {
        let (was_available, was_reserved) = before.get(product).copied().unwrap_or((0, 0));
        if available + reserved != was_available + was_reserved {
            problems.push(format!(
                "{product}: available + reserved went from {} to {}",
                was_available + was_reserved,
                available + reserved
            ));
        }
        let grew = reserved - was_reserved;
        let took = taken.get(product).copied().unwrap_or(0);
        if grew != took {
            problems.push(format!(
                "{product}: reserved grew by {grew}, completed orders took {took}"
            ));
        }
    }
    for url in [
        args.order_url(),
        &args.inventory_url,
        &args.payment_url,
        &args.notification_url,
    ] {
        let dlq: Value = get(http, &format!("{url}/admin/dlq?limit=0")).await?;
        if dlq["depth"].as_u64().unwrap_or(0) > 0 {
            problems.push(format!(
                "{} holds {} dead letters",
                dlq["queue"], dlq["depth"]
            ));
        }
    }
    Ok(problems)
}
