//! notification-service's HTTP API: `GET /api/notifications?order_id=&limit=`.

use axum::extract::State;
use common::auth::AdminCaller;
use common::http::responses::{BearerRequired, DatabaseDown};
use common::http::{ApiError, ErrorBody, Query, ValidationErrorBody};
use common::store::Store;
use common::timestamp::Timestamp;
use contract::OrderId;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .with_state(state)
}

/// A notification sent to a customer.
#[derive(Debug, Serialize, FromRow, ToSchema)]
pub struct Notification {
    pub id: Uuid,
    pub order_id: OrderId,
    pub event_type: String,
    pub message: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Params {
    /// Only this order's notifications.
    order_id: Option<OrderId>,
    /// At most this many, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// The notifications of one order, or the latest `limit` of all; oldest first, by when
/// their events happened (a cause before its effect, whichever was written first). With
/// authentication on, it needs a token with scope `orders:admin`.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications", params(Params),
    responses(
        (status = 200, description = "Oldest first", body = Vec<Notification>),
        BearerRequired,
        (status = 403, description = "The token lacks scope orders:admin", body = ErrorBody),
        (status = 422, description = "A bad parameter", body = ValidationErrorBody),
        DatabaseDown),
    security((), ("bearer" = ["orders:admin"])))]
async fn list_notifications(
    _admin: AdminCaller,
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> Result<axum::Json<Vec<Notification>>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            vec!["query".into(), "limit".into()],
            format!("must be from 1 to {MAX_LIMIT}"),
        ));
    }
    // Two statements, not one with `$1 IS NULL OR order_id = $1`: a prepared statement's
    // generic plan cannot use the (order_id, event_type) index for that, and an order's
    // notifications were then found by scanning them all (7 ms each at 50,000 rows).
    let query = match params.order_id {
        Some(_) => {
            "SELECT * FROM (
                 SELECT id, order_id, event_type, message, created_at, occurred_at FROM notifications
                 WHERE order_id = $1
                 ORDER BY occurred_at DESC, created_at DESC, id DESC LIMIT $2
             ) latest ORDER BY occurred_at, created_at, id"
        }
        None => {
            "SELECT * FROM (
                 SELECT id, order_id, event_type, message, created_at, occurred_at FROM notifications
                 WHERE $1::uuid IS NULL
                 ORDER BY occurred_at DESC, created_at DESC, id DESC LIMIT $2
             ) latest ORDER BY occurred_at, created_at, id"
        }
    };
    let notifications = sqlx::query_as(query)
        .bind(params.order_id)
        .bind(limit)
        .fetch_all(state.store.pool())
        .await?;
    Ok(axum::Json(notifications))
}
