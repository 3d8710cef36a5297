//! `GET /api/orders/{id}/saga`: the whole saga as every service published it (CONTRACT §10).
//! Seven of its nine kinds of event order-service publishes or consumes itself, and keeps in
//! the order's timeline with their cause; `InventoryReserved` it reads from
//! inventory-service's reservation when asked ([`peers::reservation`]), and the rare
//! `PaymentRefunded` reaches it through the audit queue ([`crate::audit`]).

use super::orders::read::{self, ReadFailures};
use super::{AppState, peers};
use crate::audit::{self, SagaEvent};
use crate::repo;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use common::auth::Caller;
use common::event::Kind;
use common::http::{ApiError, IfNoneMatch, Path, tagged_json};
use common::timestamp::Timestamp;
use contract::OrderId;
use contract::events::{InventoryReserved, InventoryUnavailable};
use contract::reads::ReservedEvent;
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
    /// On the `OrderCancelled` of a cancellation someone asked for (CONTRACT §15): who
    /// (customer or operator) and the reason they gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<repo::Requester>,
}

impl From<repo::TimelineEntry> for SagaStep {
    fn from(entry: repo::TimelineEntry) -> Self {
        Self {
            event_type: entry.event_type,
            event_id: entry.event_id,
            causation_id: entry.causation_id,
            publisher: entry.source,
            occurred_at: entry.occurred_at.into(),
            requested_by: entry.requested_by,
        }
    }
}

impl From<ReservedEvent> for SagaStep {
    fn from(event: ReservedEvent) -> Self {
        Self {
            event_type: InventoryReserved::NAME.to_owned(),
            event_id: event.event_id,
            causation_id: event.causation_id,
            publisher: contract::Service::Inventory.name().to_owned(),
            occurred_at: event.occurred_at,
            requested_by: None,
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
            requested_by: None,
        }
    }
}

/// The saga across all four services: every event published for the order, oldest first.
/// `InventoryReserved` is read from inventory-service (with the caller's token); while it
/// does not answer, the saga is shown without it. A `PaymentRefunded` is recorded from the
/// exchange a moment after it is published, and kept for `SAGA_AUDIT_RETENTION_HOURS`.
#[utoipa::path(get, path = "/api/orders/{id}/saga", tag = "orders",
    params(("id" = OrderId, Path, description = "The order id"),
        IfNoneMatch),
    responses(
        (status = 200, description = "The saga's events, oldest first", body = Vec<SagaStep>),
        ReadFailures),
    security((), ("bearer" = [])))]
async fn order_saga(
    caller: Caller,
    condition: IfNoneMatch,
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(id): Path<OrderId>,
) -> Result<Response, ApiError> {
    let owned = read::timeline(&state, &caller, id).await?;
    let audited = audit::saga_of(&state.store, id).await?;
    let mut steps = merge(owned.timeline, audited);
    if !steps.iter().any(|step| answers_the_order(&step.event_type)) {
        let token = peers::forwarded_token(&caller, &headers);
        steps.extend(reserved_step(&state, id, token.as_ref()).await);
        steps.sort_by_key(|step| step.occurred_at);
    }
    Ok(tagged_json(&condition, &steps))
}

/// The order's `InventoryReserved`, read from inventory-service: none while nothing is
/// reserved, or (logged) while inventory-service does not answer.
async fn reserved_step(
    state: &AppState,
    order_id: OrderId,
    token: Option<&HeaderValue>,
) -> Option<SagaStep> {
    match peers::reservation(state, order_id, token).await {
        Ok(reservation) => reservation?.reserved.map(SagaStep::from),
        Err(error) => {
            tracing::warn!(%order_id, %error, "the saga view shows no reservation");
            None
        }
    }
}

/// Whether inventory's answer to the order is already known: its unavailability (order-
/// service consumes it), or a reservation recorded from the audit queue (before it was
/// read from inventory-service instead).
fn answers_the_order(event_type: &str) -> bool {
    event_type == InventoryReserved::NAME || event_type == InventoryUnavailable::NAME
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
    steps.sort_by_key(|step| step.occurred_at);
    steps
}
