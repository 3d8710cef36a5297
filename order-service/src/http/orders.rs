//! `POST /api/orders`, `GET /api/orders/{id}`; `GET /api/orders` (the filtered list) in
//! `list`, `GET /api/orders/{id}/events` in `timeline`; what the reads of one order share in
//! `read`.

mod list;
pub(super) mod read;
mod timeline;

use super::AppState;
use crate::domain::{CreateOrderRequest, NewOrder, OrderStatus};
use crate::intake::{IntakeError, Placed};
use crate::repo::{self, OrderRow};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::auth::Caller;
use common::http::responses::{BearerRequired, JsonBodyRejected};
use common::http::timeout::Budget;
use common::http::{
    ApiError, ErrorBody, IfNoneMatch, Json, Path, ValidationErrorBody, tagged_json,
};
use common::timestamp::Timestamp;
use contract::OrderId;
use contract::events::{CancellationReason, LineItem};
use read::ReadFailures;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_order, list::list_orders))
        .routes(routes!(get_order))
        .routes(routes!(timeline::order_timeline))
}

/// An order as the API shows it (the original service's shape, `items` as an array).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: OrderId,
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
/// with the other orders placed at the same moment: see `intake`). With authentication on,
/// `customer_id` defaults to the token's `sub`, and a customer may name only itself.
#[utoipa::path(post, path = "/api/orders", tag = "orders",
    request_body = CreateOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
        pattern = r"^[!-~]([ -~]*[!-~])?$",
        description = "Retry safely: the same key and body return the first order and create nothing. \
            A key is its customer's own: another customer's order with the same key is another order")),
    responses(
        (status = 201, description = "Created, PENDING", body = OrderView,
            headers(("Location" = String, description = "/api/orders/{id} of the new order"))),
        (status = 200, description = "A repeated request: the order its key created", body = OrderView),
        BearerRequired,
        (status = 403, description = "The body names another customer than the token's", body = ErrorBody),
        (status = 409, description = "The customer used the key with another body", body = ErrorBody),
        JsonBodyRejected,
        (status = 422, description = "JSON that breaks a rule", body = ValidationErrorBody),
        (status = 503, description = "Nothing was created: the database is unavailable or slow, or too many orders are waiting", body = ErrorBody)),
    security((), ("bearer" = [])))]
async fn create_order(
    caller: Caller,
    State(state): State<AppState>,
    budget: Budget,
    headers: HeaderMap,
    Json(mut request): Json<CreateOrderRequest>,
) -> Result<Response, ApiError> {
    request.customer_id = customer_for(&caller, request.customer_id.take())?;
    let key = idempotency_key(&headers)?;
    let order = NewOrder::parse(request).map_err(ApiError::Validation)?;
    match state.intake.place(order, key, budget).await? {
        Placed::Created(row) => {
            tracing::info!(order_id = %row.id, customer_id = %row.customer_id, total_amount = %row.total(), "order created (PENDING)");
            let location = HeaderValue::from_str(&format!("/api/orders/{}", row.id))
                .map_err(ApiError::internal)?;
            let view: OrderView = row.into();
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                axum::Json(view),
            )
                .into_response())
        }
        Placed::Repeated(row) => {
            tracing::info!(order_id = %row.id, "repeated request; returning the order it created");
            Ok((StatusCode::OK, axum::Json(OrderView::from(row))).into_response())
        }
    }
}

/// Whose order this is (CONTRACT §12): the body's `customer_id` while authentication is
/// off; with it on, the token's `sub` unless the body names someone, which a customer may
/// do only for itself and `orders:admin` for anyone.
fn customer_for(caller: &Caller, named: Option<String>) -> Result<Option<String>, ApiError> {
    match (caller, named) {
        (Caller::Open, named) => Ok(named),
        (Caller::Customer(subject), Some(named)) if named != *subject => Err(ApiError::Forbidden(
            "a customer may place orders only for itself: customer_id must be the token's \
             subject (or left out)"
                .into(),
        )),
        (Caller::Customer(subject) | Caller::Admin(subject), None) => Ok(Some(subject.clone())),
        (_, named) => Ok(named),
    }
}

/// The intake's refusals as HTTP answers, mapped here only.
impl From<IntakeError> for ApiError {
    fn from(error: IntakeError) -> Self {
        match error {
            IntakeError::Unavailable(why) => Self::Unavailable(why),
            IntakeError::Busy { why, retry_after } => Self::Busy(why, retry_after),
            IntakeError::KeyConflict(why) => Self::Conflict(why),
            failed @ IntakeError::Failed(_) => Self::internal(failed),
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

/// One order; a customer sees only its own (another's is "not found").
#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders",
    params(("id" = OrderId, Path, description = "The order id"),
        IfNoneMatch),
    responses(
        (status = 200, description = "The order", body = OrderView),
        ReadFailures),
    security((), ("bearer" = [])))]
async fn get_order(
    caller: Caller,
    condition: IfNoneMatch,
    State(state): State<AppState>,
    Path(id): Path<OrderId>,
) -> Result<Response, ApiError> {
    let found = repo::find(state.store.pool(), id).await?;
    let order = read::visible(found, &caller, |order| &order.customer_id)?;
    Ok(tagged_json(&condition, &OrderView::from(order)))
}
