//! The saga's timeline, kept in each order row: one entry per event order-service saw or
//! published, and reading it back in the order the events happened.

use chrono::{DateTime, Utc};
use common::consumer::Incoming;
use common::event::Kind;
use contract::Event;
use contract::OrderId;
use contract::Service;
use contract::events::OrderCreated;
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use sqlx::types::Json;
use uuid::Uuid;

/// One step of an order's saga as order-service saw it, kept in the order row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub event_type: String,
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// The service that published the event.
    pub source: String,
    /// The event that caused it (CONTRACT §4 `causation_id`), for the saga view; absent in
    /// entries written before it was kept, and for an order's first event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Who asked for it: only on the `OrderCancelled` of a cancellation a customer or an
    /// operator requested (CONTRACT §15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<Requester>,
}

/// Who asked for a cancellation, and why, as the saga view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Requester {
    /// `customer` or `operator`.
    pub role: String,
    /// The token's subject, or `admin-token`; absent while the API is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The reason the caller gave, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl TimelineEntry {
    /// A consumed event.
    pub fn consumed(message: &Incoming<Event>) -> Self {
        let envelope = &message.envelope;
        Self {
            event_type: envelope.event.name().to_owned(),
            event_id: envelope.event_id,
            occurred_at: envelope.timestamp,
            source: envelope.event.publisher().name().to_owned(),
            causation_id: message.causation_id,
            requested_by: None,
        }
    }

    /// An event order-service is about to publish, caused by `caused_by`.
    pub fn planned(
        event_type: &str,
        event_id: Uuid,
        occurred_at: DateTime<Utc>,
        caused_by: Option<Uuid>,
    ) -> Self {
        Self {
            event_type: event_type.to_owned(),
            event_id,
            occurred_at,
            source: Service::Order.name().to_owned(),
            causation_id: caused_by,
            requested_by: None,
        }
    }
}

/// The order's timeline in the order the events happened; `None` for an unknown order.
pub async fn timeline(
    db: impl PgExecutor<'_>,
    id: OrderId,
) -> Result<Option<Vec<TimelineEntry>>, sqlx::Error> {
    Ok(owned_timeline(db, id).await?.map(|owned| owned.timeline))
}

/// The id of the `OrderCreated` that started the order's saga, if its timeline has it: what
/// a cancellation the saga did not cause itself (a timeout, a request) names as its cause.
pub async fn created_event(
    db: impl PgExecutor<'_>,
    id: OrderId,
) -> Result<Option<Uuid>, sqlx::Error> {
    Ok(timeline(db, id)
        .await?
        .into_iter()
        .flatten()
        .find(|entry| entry.event_type == OrderCreated::NAME)
        .map(|entry| entry.event_id))
}

/// An order's timeline with the customer it belongs to, so the API can show it only to
/// that customer in the same query.
pub struct OwnedTimeline {
    pub customer_id: String,
    pub timeline: Vec<TimelineEntry>,
}

/// [`timeline`] and the order's customer; `None` for an unknown order.
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %id))]
pub async fn owned_timeline(
    db: impl PgExecutor<'_>,
    id: OrderId,
) -> Result<Option<OwnedTimeline>, sqlx::Error> {
    let row: Option<(String, Json<Vec<TimelineEntry>>)> =
        sqlx::query_as("SELECT customer_id, timeline FROM orders WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(customer_id, Json(mut timeline))| {
        timeline.sort_by_key(|entry| entry.occurred_at);
        OwnedTimeline {
            customer_id,
            timeline,
        }
    }))
}
