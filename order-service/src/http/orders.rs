//! `POST /api/orders`, `GET /api/orders`, `GET /api/orders/{id}`, `GET /api/orders/{id}/events`.

use super::AppState;
use crate::domain::{CreateOrderRequest, NewOrder, OrderStatus};
use crate::intake::{IntakeError, Placed};
use crate::repo::{self, OrderFilter, OrderRow};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::http::timeout::Budget;
use common::http::{ApiError, ErrorBody, Json, Path, Query, ValidationErrorBody};
use common::ids::CustomerId;
use common::text_enum::TextEnum;
use common::timestamp::Timestamp;
use contract::events::{CancellationReason, LineItem};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(order_timeline))
}

/// An order as the API shows it (the original service's shape, `items` as an array).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub customer_id: String,
    pub items: Vec<LineItem>,
    pub total_amount: f64,
    pub status: OrderStatus,
    /// Set when `status` is `CANCELLED`.
    pub cancellation_reason: Option<CancellationReason>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<OrderRow> for OrderView {
    fn from(row: OrderRow) -> Self {
        Self {
            id: row.id,
            status: row.status,
            cancellation_reason: row.cancellation_reason(),
            total_amount: row.total().as_f64(),
            customer_id: row.customer_id,
            items: row.items.0,
            created_at: row.created_at.into(),
            updated_at: row.updated_at.into(),
        }
    }
}

/// Creates a `PENDING` order and records `OrderCreated` in the same transaction (shared
/// with the other orders placed at the same moment: see `intake`).
#[utoipa::path(post, path = "/api/orders", tag = "orders",
    request_body = CreateOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
        pattern = r"^[!-~]([ -~]*[!-~])?$",
        description = "Retry safely: the same key and body return the first order and create nothing")),
    responses(
        (status = 201, description = "Created, PENDING", body = OrderView),
        (status = 200, description = "A repeated request: the order its key created", body = OrderView),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 409, description = "The key was used with another body", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "JSON that breaks a rule", body = ValidationErrorBody),
        (status = 503, description = "Nothing was created: the database is unavailable or slow, or too many orders are waiting", body = ErrorBody)))]
async fn create_order(
    State(state): State<AppState>,
    budget: Budget,
    headers: HeaderMap,
    Json(request): Json<CreateOrderRequest>,
) -> Result<(StatusCode, axum::Json<OrderView>), ApiError> {
    let key = idempotency_key(&headers)?;
    let order = NewOrder::parse(request).map_err(ApiError::Validation)?;
    match state.intake.place(order, key, budget).await? {
        Placed::Created(row) => {
            tracing::info!(order_id = %row.id, customer_id = %row.customer_id, total_amount = %row.total(), "order created (PENDING)");
            Ok((StatusCode::CREATED, axum::Json(row.into())))
        }
        Placed::Repeated(row) => {
            tracing::info!(order_id = %row.id, "repeated request; returning the order it created");
            Ok((StatusCode::OK, axum::Json(row.into())))
        }
    }
}

/// The intake's refusals as HTTP answers, mapped here only.
impl From<IntakeError> for ApiError {
    fn from(error: IntakeError) -> Self {
        match error {
            IntakeError::Unavailable(why) => Self::Unavailable(why),
            IntakeError::KeyConflict(why) => Self::Conflict(why),
            IntakeError::Failed(why) => Self::Internal(why),
        }
    }
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

/// One order.
#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "The order id")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 422, description = "Not a UUID", body = ValidationErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody)))]
async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<OrderView>, ApiError> {
    let order = repo::find(state.store.pool(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Order not found".into()))?;
    Ok(axum::Json(order.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Only orders with this status.
    #[param(value_type = Option<OrderStatus>)]
    status: Option<String>,
    /// Only this customer's orders.
    customer_id: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Orders to skip (default 0).
    #[param(minimum = 0)]
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
        let customer_id = match self.customer_id.filter(|id| !id.is_empty()) {
            None => None,
            Some(id) => CustomerId::parse(id)
                .map_err(|error| errors.push(error.at(at("customer_id"))))
                .ok(),
        };
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
            customer_id,
            limit,
            offset,
        })
    }
}

/// Newest first, filtered by `status` and `customer_id`, paginated by `limit`/`offset`.
#[utoipa::path(get, path = "/api/orders", tag = "orders", params(ListParams),
    responses(
        (status = 200, description = "The orders, newest first", body = Vec<OrderView>),
        (status = 422, description = "A bad parameter", body = ValidationErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody)))]
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
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    #[schema(example = "OrderCreated")]
    pub event_type: String,
    pub event_id: Uuid,
    pub occurred_at: Timestamp,
    /// The service that published the event.
    pub source: String,
}

impl From<repo::TimelineEntry> for TimelineEntry {
    fn from(row: repo::TimelineEntry) -> Self {
        Self {
            event_type: row.event_type,
            event_id: row.event_id,
            occurred_at: row.occurred_at.into(),
            source: row.source,
        }
    }
}

/// The saga's timeline: the events order-service published and consumed, in order.
#[utoipa::path(get, path = "/api/orders/{id}/events", tag = "orders",
    params(("id" = Uuid, Path, description = "The order id")),
    responses(
        (status = 200, description = "The events, oldest first", body = Vec<TimelineEntry>),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 422, description = "Not a UUID", body = ValidationErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody)))]
async fn order_timeline(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Vec<TimelineEntry>>, ApiError> {
    let timeline = repo::timeline(state.store.pool(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Order not found".into()))?;
    Ok(axum::Json(
        timeline.into_iter().map(TimelineEntry::from).collect(),
    ))
}
