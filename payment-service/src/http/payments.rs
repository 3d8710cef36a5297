//! `GET /api/payments/{order_id}`: an order's payment.

use super::AppState;
use crate::payments::{self, PaymentRow, PaymentStatus};
use axum::extract::State;
use common::auth::AdminCaller;
use common::http::responses::{BearerRequired, DatabaseDown};
use common::http::{ApiError, ErrorBody, Path, ValidationErrorBody};
use common::timestamp::Timestamp;
use contract::OrderId;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_payment))
}

/// An order's payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub order_id: OrderId,
    pub payment_id: Uuid,
    pub status: PaymentStatus,
    pub amount: f64,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The provider's id of the charge that succeeded, once one has.
    pub charge_id: Option<String>,
    /// The provider's id of the refund, once the charge was given back.
    pub refund_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<PaymentRow> for PaymentView {
    fn from(row: PaymentRow) -> Self {
        Self {
            status: row.status,
            amount: row.amount().as_f64(),
            attempts: row.attempts(),
            order_id: row.order_id,
            payment_id: row.payment_id,
            last_error: row.last_error,
            charge_id: row.charge_id,
            refund_id: row.refund_id,
            created_at: row.created_at.into(),
            updated_at: row.updated_at.into(),
        }
    }
}

/// The payment of one order. With authentication on, it needs a token with scope
/// `orders:admin`.
#[utoipa::path(get, path = "/api/payments/{order_id}", tag = "payments",
    params(("order_id" = OrderId, Path)),
    responses(
        (status = 200, description = "The payment", body = PaymentView),
        BearerRequired,
        (status = 403, description = "The token lacks scope orders:admin", body = ErrorBody),
        (status = 404, description = "No payment for this order", body = ErrorBody),
        (status = 422, description = "Not a UUID", body = ValidationErrorBody),
        DatabaseDown),
    security((), ("bearer" = ["orders:admin"])))]
async fn get_payment(
    _admin: AdminCaller,
    State(state): State<AppState>,
    Path(order_id): Path<OrderId>,
) -> Result<axum::Json<PaymentView>, ApiError> {
    payments::find(state.store.pool(), order_id)
        .await?
        .map(|row| axum::Json(row.into()))
        .ok_or_else(|| ApiError::not_found("Payment"))
}
