//! `GET /api/orders/{id}/events`: the saga's timeline as order-service saw it.

use super::read::{self, ReadFailures};
use crate::http::AppState;
use crate::repo;
use axum::extract::State;
use axum::response::Response;
use common::auth::Caller;
use common::http::{ApiError, IfNoneMatch, Path, tagged_json};
use common::timestamp::Timestamp;
use contract::OrderId;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

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
    params(("id" = OrderId, Path, description = "The order id"),
        IfNoneMatch),
    responses(
        (status = 200, description = "The events, oldest first", body = Vec<TimelineEntry>),
        ReadFailures),
    security((), ("bearer" = [])))]
pub(super) async fn order_timeline(
    caller: Caller,
    condition: IfNoneMatch,
    State(state): State<AppState>,
    Path(id): Path<OrderId>,
) -> Result<Response, ApiError> {
    let owned = read::timeline(&state, &caller, id).await?;
    let entries: Vec<TimelineEntry> = owned
        .timeline
        .into_iter()
        .map(TimelineEntry::from)
        .collect();
    Ok(tagged_json(&condition, &entries))
}
