//! `GET /api/orders/{id}/saga`: the whole saga as every service published it (CONTRACT §10),
//! read from the audit of all events on the exchange (see [`crate::audit`]).

use super::AppState;
use crate::audit::{self, SagaEvent};
use crate::repo;
use axum::extract::State;
use common::http::{ApiError, ErrorBody, Path, ValidationErrorBody};
use common::timestamp::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(order_saga))
}

/// One event of the saga, as the service that published it sent it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SagaStep {
    pub event_type: String,
    pub event_id: Uuid,
    /// The event that caused this one; `null` for the saga's first event. A timeout's
    /// cancellation names the `OrderCreated` that started the saga.
    pub causation_id: Option<Uuid>,
    /// The service that published it (its AMQP `app_id`).
    pub publisher: String,
    pub occurred_at: Timestamp,
}

impl From<SagaEvent> for SagaStep {
    fn from(event: SagaEvent) -> Self {
        Self {
            event_type: event.event_type,
            event_id: event.event_id,
            causation_id: event.causation_id,
            publisher: event.publisher,
            occurred_at: event.occurred_at.into(),
        }
    }
}

/// The saga across all four services: every event published for the order, oldest first.
/// Events are recorded from the exchange a moment after they are published, and kept for
/// `SAGA_AUDIT_RETENTION_HOURS`.
#[utoipa::path(get, path = "/api/orders/{id}/saga", tag = "orders",
    params(("id" = Uuid, Path, description = "The order id")),
    responses(
        (status = 200, description = "The saga's events, oldest first", body = Vec<SagaStep>),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 422, description = "Not a UUID", body = ValidationErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody)))]
async fn order_saga(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Vec<SagaStep>>, ApiError> {
    repo::find(state.store.pool(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Order not found".into()))?;
    let events = audit::saga_of(&state.store, id).await?;
    Ok(axum::Json(events.into_iter().map(SagaStep::from).collect()))
}
