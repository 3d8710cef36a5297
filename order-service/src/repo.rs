//! The SQL of order-service. Functions take a connection, so the caller decides whether
//! they run inside a unit of work or straight on the pool.

use crate::domain::{NewOrder, OrderStatus, Outcome};
use chrono::{DateTime, Utc};
use common::amqp::consumer::Incoming;
use common::event::Kind;
use common::ids::CustomerId;
use common::text_enum::TextEnum;
use contract::Event;
use contract::Service;
use contract::events::{CancellationReason, LineItem, OrderCreated};
use contract::money::Money;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgExecutor};
use std::time::Duration;
use uuid::Uuid;

const COLUMNS: &str = "id, customer_id, items, total_cents, status, cancellation_reason, \
                       created_at, updated_at, idempotency_key";

#[derive(Debug, Clone, FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub customer_id: String,
    pub items: Json<Vec<LineItem>>,
    pub total_cents: i64,
    pub status: OrderStatus,
    pub cancellation_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub idempotency_key: Option<String>,
}

impl OrderRow {
    pub fn cancellation_reason(&self) -> Option<CancellationReason> {
        self.cancellation_reason
            .as_deref()
            .and_then(CancellationReason::parse)
    }

    pub fn total(&self) -> Money {
        Money::from_cents(self.total_cents)
    }

    /// Whether this stored order is what `order` asks for (same idempotency key, same body).
    pub fn matches(&self, order: &NewOrder) -> bool {
        self.customer_id == order.customer_id.as_str()
            && self.items.0 == order.items
            && self.total() == order.total
    }
}

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

/// A new order about to be written: its id and the `OrderCreated` it will publish are
/// chosen beforehand, so its first timeline entry goes into the same insert.
pub struct Insertion<'a> {
    pub id: Uuid,
    pub order: &'a NewOrder,
    pub idempotency_key: Option<&'a str>,
    pub created: TimelineEntry,
}

impl Insertion<'_> {
    /// Its customer's idempotency key, if it came with one.
    pub fn customer_key(&self) -> Option<CustomerKey<'_>> {
        Some(CustomerKey {
            customer_id: self.order.customer_id.as_str(),
            key: self.idempotency_key?,
        })
    }
}

/// Inserts `PENDING` orders in one statement and returns those written. An order whose
/// idempotency key its customer already used (or uses twice in the list) is skipped; a
/// concurrent insert with the same customer and key waits for the first to commit.
pub async fn insert_all(
    conn: &mut PgConnection,
    orders: &[Insertion<'_>],
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let ids: Vec<Uuid> = orders.iter().map(|o| o.id).collect();
    let customers: Vec<&str> = orders
        .iter()
        .map(|o| o.order.customer_id.as_str())
        .collect();
    let items: Vec<Json<&Vec<LineItem>>> = orders.iter().map(|o| Json(&o.order.items)).collect();
    let totals: Vec<i64> = orders.iter().map(|o| o.order.total.cents()).collect();
    let keys: Vec<Option<&str>> = orders.iter().map(|o| o.idempotency_key).collect();
    let timelines: Vec<Json<[&TimelineEntry; 1]>> =
        orders.iter().map(|o| Json([&o.created])).collect();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO orders (id, customer_id, items, total_cents, status, idempotency_key, timeline)
         SELECT id, customer, item, total, 'PENDING', key, line
         FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::bigint[], $5::text[], $6::jsonb[])
              AS new(id, customer, item, total, key, line)
         ON CONFLICT (customer_id, idempotency_key) DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(&ids)
    .bind(&customers)
    .bind(&items)
    .bind(&totals)
    .bind(&keys)
    .bind(&timelines)
    .fetch_all(conn)
    .await
}

/// A customer's idempotency key: keys are scoped per customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerKey<'a> {
    pub customer_id: &'a str,
    pub key: &'a str,
}

/// The orders created with these customers' keys.
pub async fn find_by_idempotency_keys(
    conn: &mut PgConnection,
    keys: &[CustomerKey<'_>],
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let customers: Vec<&str> = keys.iter().map(|k| k.customer_id).collect();
    let idempotency_keys: Vec<&str> = keys.iter().map(|k| k.key).collect();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders
         WHERE (customer_id, idempotency_key) IN
               (SELECT * FROM unnest($1::text[], $2::text[]))"
    )))
    .bind(&customers)
    .bind(&idempotency_keys)
    .fetch_all(conn)
    .await
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// [`find`], locking the row until the transaction ends: concurrent cancellations of one
/// order, and the saga's own ending, take turns.
pub async fn find_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Filters for listing orders.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub customer_id: Option<CustomerId>,
    pub limit: i64,
    pub offset: i64,
}

/// Newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &OrderFilter,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders
         WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR customer_id = $2)
         ORDER BY created_at DESC, id DESC
         LIMIT $3 OFFSET $4"
    )))
    .bind(filter.status.map(OrderStatus::as_str))
    .bind(filter.customer_id.as_ref().map(CustomerId::as_str))
    .bind(filter.limit)
    .bind(filter.offset)
    .fetch_all(db)
    .await
}

/// How many orders have each status (of one customer's, or of all).
pub async fn count_by_status(
    db: impl PgExecutor<'_>,
    customer_id: Option<&str>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT status, count(*) FROM orders WHERE $1::text IS NULL OR customer_id = $1 \
         GROUP BY status",
    )
    .bind(customer_id)
    .fetch_all(db)
    .await
}

/// Ends a `PENDING` order and appends `timeline` to its timeline. Returns the updated
/// order, or `None` when it had already ended (or does not exist): the row lock makes
/// concurrent endings take turns, and only the first finds it `PENDING`.
pub async fn finish(
    conn: &mut PgConnection,
    id: Uuid,
    outcome: Outcome,
    timeline: &[TimelineEntry],
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE orders SET status = $2, cancellation_reason = $3, updated_at = now(),
                           timeline = timeline || $4
         WHERE id = $1 AND status = 'PENDING'
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(outcome.status().as_str())
    .bind(outcome.reason().map(CancellationReason::as_str))
    .bind(Json(timeline))
    .fetch_optional(conn)
    .await
}

/// Cancels an order that is `PENDING` or `COMPLETED` (the caller has checked the window,
/// under the row lock) and appends `entry` to its timeline.
pub async fn cancel(
    conn: &mut PgConnection,
    id: Uuid,
    reason: CancellationReason,
    entry: &TimelineEntry,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE orders SET status = 'CANCELLED', cancellation_reason = $2, updated_at = now(),
                           timeline = timeline || $3
         WHERE id = $1 AND status IN ('PENDING', 'COMPLETED')
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(reason.as_str())
    .bind(Json([entry]))
    .fetch_optional(conn)
    .await
}

/// Appends an event to the timeline of an order whose status it does not change; returns
/// the order's status, or `None` if the order is unknown.
pub async fn note(
    conn: &mut PgConnection,
    id: Uuid,
    entry: &TimelineEntry,
) -> Result<Option<OrderStatus>, sqlx::Error> {
    sqlx::query_scalar("UPDATE orders SET timeline = timeline || $2 WHERE id = $1 RETURNING status")
        .bind(id)
        .bind(Json([entry]))
        .fetch_optional(conn)
        .await
}

/// Locks up to `limit` orders `PENDING` for longer than `timeout`, oldest first, skipping
/// rows another replica's sweeper or a consumer holds; returns their ids.
pub async fn expired(
    conn: &mut PgConnection,
    timeout: Duration,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM orders
         WHERE status = 'PENDING' AND created_at < now() - make_interval(secs => $1)
         ORDER BY created_at LIMIT $2
         FOR UPDATE SKIP LOCKED",
    )
    .bind(timeout.as_secs_f64())
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The order's timeline in the order the events happened; `None` for an unknown order.
pub async fn timeline(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<Vec<TimelineEntry>>, sqlx::Error> {
    Ok(owned_timeline(db, id).await?.map(|owned| owned.timeline))
}

/// The id of the `OrderCreated` that started the order's saga, if its timeline has it: what
/// a cancellation the saga did not cause itself (a timeout, a request) names as its cause.
pub async fn created_event(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
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
pub async fn owned_timeline(
    db: impl PgExecutor<'_>,
    id: Uuid,
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
