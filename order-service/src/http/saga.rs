//! `GET /api/orders/{id}/saga`: the whole saga as every service published it (CONTRACT §10).
//! Six of its eight kinds of event order-service publishes or consumes itself, and keeps in
//! the order's timeline with their cause; the other two (`InventoryReserved`,
//! `PaymentRefunded`) reach it through the audit queue ([`crate::audit`]).

use super::AppState;
use crate::audit::{self, SagaEvent};
use crate::repo;
use axum::extract::State;
use axum::response::Response;
use common::auth::Caller;
use common::http::{ApiError, ErrorBody, IfNoneMatch, Path, ValidationErrorBody, tagged_json};
use common::timestamp::Timestamp;
use serde::Serialize;
use std::collections::HashSet;
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

impl From<repo::TimelineEntry> for SagaStep {
    fn from(entry: repo::TimelineEntry) -> Self {
        Self {
            event_type: entry.event_type,
            event_id: entry.event_id,
            causation_id: entry.causation_id,
            publisher: entry.source,
            occurred_at: entry.occurred_at.into(),
        }
    }
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
/// The events order-service neither publishes nor consumes are recorded from the exchange a
/// moment after they are published, and kept for `SAGA_AUDIT_RETENTION_HOURS`.
#[utoipa::path(get, path = "/api/orders/{id}/saga", tag = "orders",
    params(("id" = Uuid, Path, description = "The order id"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag of an earlier answer: 304 while it is still current")),
    responses(
        (status = 200, description = "The saga's events, oldest first", body = Vec<SagaStep>, headers(
            ("ETag" = String, description = "Strong tag of this answer; changes with every new event"),
            ("Cache-Control" = String, description = "private, no-cache"))),
        (status = 304, description = "Not modified: If-None-Match names the current ETag"),
        (status = 401, description = "Authentication is on and no valid bearer token was sent", body = ErrorBody),
        (status = 404, description = "No such order (or another customer's)", body = ErrorBody),
        (status = 422, description = "Not a UUID", body = ValidationErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody)),
    security((), ("bearer" = [])))]
async fn order_saga(
    caller: Caller,
    condition: IfNoneMatch,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let owned = repo::owned_timeline(state.store.pool(), id)
        .await?
        .filter(|owned| caller.may_see(&owned.customer_id))
        .ok_or_else(|| ApiError::NotFound("Order not found".into()))?;
    let audited = audit::saga_of(&state.store, id).await?;
    Ok(tagged_json(&condition, &merge(owned.timeline, audited)))
}

/// The timeline and the audited events in the order they happened, each event once (an
/// order recorded before the audit was narrowed has its own events in both).
fn merge(timeline: Vec<repo::TimelineEntry>, audited: Vec<SagaEvent>) -> Vec<SagaStep> {
    let mut steps: Vec<SagaStep> = timeline.into_iter().map(SagaStep::from).collect();
    let mut seen: HashSet<Uuid> = steps.iter().map(|step| step.event_id).collect();
    steps.extend(
        audited
            .into_iter()
            .filter(|event| seen.insert(event.event_id))
            .map(SagaStep::from),
    );
    steps.sort_by_key(|step| step.occurred_at.0);
    steps
}
