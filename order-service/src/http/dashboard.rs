//! The live dashboard: `GET /` serves one self-contained page (no build step, no CDN) that
//! polls `GET /api/dashboard` — recent orders, counts by status, stock (read from
//! inventory-service), the payment provider as payment-service's circuit breakers see it
//! and every service's dead-letter depth — and places orders through the ordinary
//! `POST /api/orders`.

use super::orders::OrderView;
use super::{AppState, peers};
use crate::repo::{self, OrderFilter};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, Response};
use chrono::Utc;
use common::amqp::dead_letters;
use common::auth::Caller;
use common::http::responses::{BearerRequired, DatabaseDown};
use common::http::{ApiError, IfNoneMatch, weakly_tagged_json};
use common::timestamp::Timestamp;
use contract::Service;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Orders the dashboard shows.
const RECENT_ORDERS: i64 = 25;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dashboard_state))
        .route("/", axum::routing::get(page))
}

/// The page itself.
async fn page() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

/// Everything the dashboard shows, in one request.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardState {
    /// The newest orders, newest first.
    pub orders: Vec<OrderView>,
    /// How many orders have each status.
    pub counts: BTreeMap<String, i64>,
    /// Stock per product, or `null` when inventory-service does not answer.
    pub stock: Option<Vec<Stock>>,
    /// Why `stock` is missing.
    pub stock_error: Option<String>,
    /// The payment provider as payment-service's circuit breakers see it (its
    /// `GET /breaker`): `available`, `recovering` (a probe is due), `unavailable` (some
    /// replica's breaker is open: payments wait) or `unknown` (no replica runs); `null`
    /// when payment-service does not answer.
    pub payment_provider: Option<String>,
    /// Why `payment_provider` is missing.
    pub payment_provider_error: Option<String>,
    /// Every service's dead-letter queue; `depth` is `null` while RabbitMQ is unreachable.
    pub dead_letters: Vec<DeadLetterDepth>,
    pub generated_at: Timestamp,
}

/// One product's stock, as inventory-service reports it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Stock {
    pub product_id: String,
    pub available: i64,
    pub reserved: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterDepth {
    pub service: String,
    pub queue: String,
    pub depth: Option<u32>,
}

/// Recent orders, counts, stock and dead-letter depths. With authentication on, a
/// customer's token shows that customer's orders and counts and no dead-letter queues;
/// an `orders:admin` token shows everything.
#[utoipa::path(get, path = "/api/dashboard", tag = "dashboard",
    params(("If-None-Match" = Option<String>, Header, description = "An ETag of an earlier answer: 304 while nothing shown has changed")),
    responses(
    (status = 200, description = "The dashboard's data", body = DashboardState),
    (status = 304, description = "Not modified: nothing shown has changed since If-None-Match's ETag"),
    BearerRequired,
    DatabaseDown),
    security((), ("bearer" = [])))]
async fn dashboard_state(
    caller: Caller,
    condition: IfNoneMatch,
    headers: HeaderMap,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let customer =
        match caller.only_customer() {
            Some(own) => Some(common::ids::CustomerId::parse(own).map_err(|_| {
                ApiError::Forbidden("the token's subject is not a customer id".into())
            })?),
            None => None,
        };
    let filter = OrderFilter {
        limit: RECENT_ORDERS,
        customer_id: customer.clone(),
        ..Default::default()
    };
    // inventory-service wants a token too when authentication is on: the caller's.
    let token = peers::forwarded_token(&caller, &headers);
    let (orders, counts, stock, breakers, dead_letters) = tokio::join!(
        repo::list(state.store.pool(), &filter),
        repo::count_by_status(state.store.pool(), customer.as_ref().map(|c| c.as_str())),
        found(peers::read_from::<Vec<Stock>>(
            &state,
            &state.inventory_url,
            "api/inventory",
            "inventory",
            token.as_ref()
        )),
        found(peers::read_from::<Breakers>(
            &state,
            &state.payment_url,
            "breaker",
            "payment",
            None
        )),
        async {
            // The queues are the operators' business, not a customer's.
            if customer.is_some() {
                Vec::new()
            } else {
                dead_letter_depths(&state).await
            }
        },
    );
    let (stock, stock_error) = split(stock);
    let (breakers, payment_provider_error) = split(breakers);
    let mut body = DashboardState {
        orders: orders?.into_iter().map(OrderView::from).collect(),
        counts: counts?.into_iter().collect(),
        stock,
        stock_error,
        payment_provider: breakers.map(|breakers| breakers.provider),
        payment_provider_error,
        dead_letters,
        generated_at: Utc::now().into(),
    };
    // The page polls every second: what it shows, without the moment it was made, is the
    // version (a weak tag: the same data made at another moment is "the same").
    let generated_at = body.generated_at;
    body.generated_at = Timestamp::from(chrono::DateTime::<Utc>::UNIX_EPOCH);
    let version = serde_json::to_value(&body).unwrap_or_default();
    body.generated_at = generated_at;
    Ok(weakly_tagged_json(&condition, &body, &version))
}

/// What the dashboard reads of payment-service's `GET /breaker`.
#[derive(Debug, Deserialize)]
struct Breakers {
    provider: String,
}

/// A read that must find what it asks for: here a 404 is an odd answer too.
async fn found<T>(read: impl Future<Output = Result<Option<T>, String>>) -> Result<T, String> {
    read.await?
        .ok_or_else(|| "the service answered 404 Not Found".to_owned())
}

/// A value, or why it is missing.
fn split<T>(read: Result<T, String>) -> (Option<T>, Option<String>) {
    match read {
        Ok(value) => (Some(value), None),
        Err(error) => (None, Some(error)),
    }
}

async fn dead_letter_depths(state: &AppState) -> Vec<DeadLetterDepth> {
    let link = state.broker.current();
    let mut depths = Vec::new();
    for service in Service::ALL {
        let queue = contract::queues::dead_letter_queue(&state.broker.topology().exchange, service);
        let depth = match &link {
            Some(link) => dead_letters::depth(link, &queue).await.ok(),
            None => None,
        };
        depths.push(DeadLetterDepth {
            service: service.name().to_owned(),
            queue,
            depth,
        });
    }
    depths
}
