//! The live dashboard: `GET /` serves one self-contained page (no build step, no CDN) that
//! polls `GET /api/dashboard` — recent orders, counts by status, stock (read from
//! inventory-service) and every service's dead-letter depth — and places orders through
//! the ordinary `POST /api/orders`.

use super::AppState;
use super::orders::OrderView;
use crate::repo::{self, OrderFilter};
use axum::extract::State;
use axum::response::Html;
use chrono::Utc;
use common::Service;
use common::amqp::dead_letters;
use common::http::{ApiError, ErrorBody};
use common::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
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

/// Recent orders, counts, stock and dead-letter depths.
#[utoipa::path(get, path = "/api/dashboard", tag = "dashboard", responses(
    (status = 200, description = "The dashboard's data", body = DashboardState),
    (status = 503, description = "The database is unavailable", body = ErrorBody)))]
async fn dashboard_state(
    State(state): State<AppState>,
) -> Result<axum::Json<DashboardState>, ApiError> {
    let filter = OrderFilter {
        limit: RECENT_ORDERS,
        ..Default::default()
    };
    let (orders, counts, (stock, stock_error), dead_letters) = tokio::join!(
        repo::list(state.store.pool(), &filter),
        repo::count_by_status(state.store.pool()),
        stock(&state),
        dead_letter_depths(&state),
    );
    Ok(axum::Json(DashboardState {
        orders: orders?.into_iter().map(OrderView::from).collect(),
        counts: counts?.into_iter().collect(),
        stock,
        stock_error,
        dead_letters,
        generated_at: Utc::now().into(),
    }))
}

/// Asks inventory-service for its stock, briefly.
///
/// The one deliberate read-side coupling between the services: the dashboard only shows
/// stock, so it asks the service that owns it rather than keep a read model of its own.
/// The saga never waits on this call — services act only on events — and when
/// inventory-service does not answer, the dashboard shows why instead of the stock.
async fn stock(state: &AppState) -> (Option<Vec<Stock>>, Option<String>) {
    let url = state
        .inventory_url
        .join("api/inventory")
        .expect("a relative path joins");
    let answer = state
        .http
        .get(url)
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    match answer {
        Ok(response) => match response.json().await {
            Ok(stock) => (Some(stock), None),
            Err(error) => (
                None,
                Some(format!("inventory-service answered oddly: {error}")),
            ),
        },
        Err(error) => (
            None,
            Some(format!("inventory-service unreachable: {error}")),
        ),
    }
}

async fn dead_letter_depths(state: &AppState) -> Vec<DeadLetterDepth> {
    let link = state.broker.current();
    let mut depths = Vec::new();
    for service in Service::ALL {
        let queue = state.broker.topology().dead_letter_queue(service);
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
