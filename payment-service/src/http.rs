//! payment-service's HTTP API: `GET /api/payments/{order_id}`.

use crate::payments::{self, PaymentRow, PaymentStatus};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::{DateTime, Utc};
use common::http::{ApiError, Path};
use common::store::Store;
use serde::Serialize;
use uuid::Uuid;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/payments/{order_id}", get(get_payment))
        .with_state(state)
}

#[derive(Debug, Serialize)]
pub struct PaymentView {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub status: PaymentStatus,
    pub amount: f64,
    pub attempts: u32,
    pub last_error: Option<String>,
    #[serde(with = "common::timefmt")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "common::timefmt")]
    pub updated_at: DateTime<Utc>,
}

impl From<PaymentRow> for PaymentView {
    fn from(row: PaymentRow) -> Self {
        Self {
            status: row.status(),
            amount: row.amount().as_f64(),
            attempts: row.attempts(),
            order_id: row.order_id,
            payment_id: row.payment_id,
            last_error: row.last_error,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

async fn get_payment(
    State(state): State<AppState>,
    Path(order_id): Path<Uuid>,
) -> Result<axum::Json<PaymentView>, ApiError> {
    payments::find(state.store.pool(), order_id)
        .await?
        .map(|row| axum::Json(row.into()))
        .ok_or_else(|| ApiError::NotFound("Payment not found".into()))
}
