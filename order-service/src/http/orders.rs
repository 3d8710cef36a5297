//! `POST /api/orders`, `GET /api/orders`, `GET /api/orders/{id}`, `GET /api/orders/{id}/events`.

use super::AppState;
use crate::domain::{CreateOrderRequest, NewOrder, OrderStatus};
use crate::repo::{self, OrderFilter, OrderRow, TimelineRow};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use common::Service;
use common::events::{Event, LineItem, OrderCreated};
use common::http::{ApiError, Json, Path, Query};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/orders", post(create_order).get(list_orders))
        .route("/api/orders/{id}", get(get_order))
        .route("/api/orders/{id}/events", get(order_timeline))
}

/// An order as the API shows it (the original service's shape, `items` as an array).
#[derive(Debug, Serialize)]
pub struct OrderView {
    pub id: Uuid,
    pub customer_id: String,
    pub items: Vec<LineItem>,
    pub total_amount: f64,
    pub status: OrderStatus,
    pub cancellation_reason: Option<&'static str>,
    #[serde(with = "common::timefmt")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "common::timefmt")]
    pub updated_at: DateTime<Utc>,
}

impl From<OrderRow> for OrderView {
    fn from(row: OrderRow) -> Self {
        Self {
            id: row.id,
            status: row.status(),
            cancellation_reason: row.cancellation_reason().map(|reason| reason.as_str()),
            total_amount: row.total().as_f64(),
            customer_id: row.customer_id,
            items: row.items.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Creates a `PENDING` order and records `OrderCreated` in the same transaction.
async fn create_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<CreateOrderRequest>,
) -> Result<(StatusCode, axum::Json<OrderView>), ApiError> {
    let key = idempotency_key(&headers)?;
    let order = NewOrder::parse(request).map_err(ApiError::Validation)?;

    let mut uow = state.store.begin().await?;
    let Some(row) = repo::insert(uow.conn(), &order, key.as_deref()).await? else {
        // Only a reused idempotency key makes the insert do nothing.
        let key = key.unwrap_or_default();
        let existing = repo::find_by_idempotency_key(uow.conn(), &key)
            .await?
            .ok_or_else(|| ApiError::Conflict("Idempotency-Key is in use; retry".into()))?;
        if !existing.matches(&order) {
            return Err(ApiError::Conflict(
                "Idempotency-Key was already used with a different request body".into(),
            ));
        }
        tracing::info!(order_id = %existing.id, "repeated request; returning the order it created");
        return Ok((StatusCode::OK, axum::Json(existing.into())));
    };
    let created = Event::OrderCreated(OrderCreated {
        order_id: row.id,
        customer_id: row.customer_id.clone(),
        items: row.items.0.clone(),
        total_amount: row.total(),
    });
    let envelope = uow.publish(created, None).await?;
    repo::record_event(uow.conn(), &envelope, Service::Order.name()).await?;
    uow.commit().await?;
    tracing::info!(order_id = %row.id, customer_id = %row.customer_id, total_amount = %row.total(), "order created (PENDING)");
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// Reads the optional `Idempotency-Key` header.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::invalid(
            vec!["header".into(), "Idempotency-Key".into()],
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        )
    };
    let key = value.to_str().map_err(|_| invalid())?.trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(invalid());
    }
    Ok(Some(key.to_owned()))
}

async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<OrderView>, ApiError> {
    let order = repo::find(state.store.pool(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Order not found".into()))?;
    Ok(axum::Json(order.into()))
}

#[derive(Debug, Deserialize)]
struct ListParams {
    status: Option<String>,
    customer_id: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

impl ListParams {
    fn into_filter(self) -> Result<OrderFilter, ApiError> {
        let mut errors = Vec::new();
        let at = |name: &str| vec!["query".into(), name.into()];
        let status = match self.status.as_deref() {
            None | Some("") => None,
            Some(text) => {
                let status = OrderStatus::parse(&text.to_ascii_uppercase());
                if status.is_none() {
                    errors.push(common::http::FieldError::new(
                        at("status"),
                        "must be PENDING, COMPLETED or CANCELLED",
                    ));
                }
                status
            }
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(common::http::FieldError::new(
                at("limit"),
                format!("must be from 1 to {MAX_LIMIT}"),
            ));
        }
        let offset = self.offset.unwrap_or(0);
        if offset < 0 {
            errors.push(common::http::FieldError::new(
                at("offset"),
                "must be 0 or more",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(OrderFilter {
            status,
            customer_id: self.customer_id.filter(|id| !id.is_empty()),
            limit,
            offset,
        })
    }
}

/// Newest first, filtered by `status` and `customer_id`, paginated by `limit`/`offset`.
async fn list_orders(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Vec<OrderView>>, ApiError> {
    let filter = params.into_filter()?;
    let orders = repo::list(state.store.pool(), &filter).await?;
    Ok(axum::Json(
        orders.into_iter().map(OrderView::from).collect(),
    ))
}

/// One step of the saga as order-service saw it.
#[derive(Debug, Serialize)]
pub struct TimelineEntry {
    pub event_type: String,
    pub event_id: Uuid,
    #[serde(with = "common::timefmt")]
    pub occurred_at: DateTime<Utc>,
    /// The service that published the event.
    pub source: String,
}

impl From<TimelineRow> for TimelineEntry {
    fn from(row: TimelineRow) -> Self {
        Self {
            event_type: row.event_type,
            event_id: row.event_id,
            occurred_at: row.occurred_at,
            source: row.source,
        }
    }
}

async fn order_timeline(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Vec<TimelineEntry>>, ApiError> {
    if repo::find(state.store.pool(), id).await?.is_none() {
        return Err(ApiError::NotFound("Order not found".into()));
    }
    let timeline = repo::timeline(state.store.pool(), id).await?;
    Ok(axum::Json(
        timeline.into_iter().map(TimelineEntry::from).collect(),
    ))
}
