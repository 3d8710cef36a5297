//! notification-service's HTTP API: `GET /api/notifications?order_id=&limit=`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::{DateTime, Utc};
use common::http::{ApiError, Query};
use common::store::Store;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use uuid::Uuid;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/notifications", get(list_notifications))
        .with_state(state)
}

#[derive(Debug, Serialize, FromRow)]
pub struct Notification {
    pub id: Uuid,
    pub order_id: Uuid,
    pub event_type: String,
    pub message: String,
    #[serde(with = "common::timefmt")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct Params {
    order_id: Option<Uuid>,
    limit: Option<i64>,
}

/// The notifications of one order, or the latest `limit` of all; oldest first.
async fn list_notifications(
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
    let notifications = sqlx::query_as(
        "SELECT * FROM (
             SELECT id, order_id, event_type, message, created_at FROM notifications
             WHERE $1::uuid IS NULL OR order_id = $1
             ORDER BY created_at DESC, id DESC LIMIT $2
         ) latest ORDER BY created_at, id",
    )
    .bind(params.order_id)
    .bind(limit)
    .fetch_all(state.store.pool())
    .await?;
    Ok(axum::Json(notifications))
}
