//! The SQL of order-service. Functions take a connection, so the caller decides whether
//! they run inside a unit of work or straight on the pool.
//!
//! Here: reading orders and changing their status. Writing new ones (and finding them
//! again by idempotency key) is in `insert`; the saga's timeline kept in each order row,
//! and reading it, in `timeline`.

mod insert;
mod timeline;

pub use insert::{CustomerKey, Insertion, find_by_idempotency_keys, insert_all};
pub use timeline::{
    OwnedTimeline, Requester, TimelineEntry, created_event, owned_timeline, timeline,
};

use crate::domain::{NewOrder, OrderStatus, Outcome};
use chrono::{DateTime, Utc};
use common::ids::CustomerId;
use common::text_enum::TextEnum;
use contract::OrderId;
use contract::events::{CancellationReason, LineItem};
use contract::money::Money;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgExecutor};
use std::time::Duration;

const COLUMNS: &str = "id, customer_id, items, total_cents, status, cancellation_reason, \
                       created_at, updated_at, idempotency_key";

#[derive(Debug, Clone, FromRow)]
pub struct OrderRow {
    pub id: OrderId,
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
        self.customer_id == order.customer_id().as_str()
            && self.items.0 == order.items()
            && self.total() == order.total()
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(order_id = %id))]
pub async fn find(db: impl PgExecutor<'_>, id: OrderId) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// [`find`], locking the row until the transaction ends: concurrent cancellations of one
/// order, and the saga's own ending, take turns.
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %id))]
pub async fn find_for_update(
    conn: &mut PgConnection,
    id: OrderId,
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
#[tracing::instrument(level = "debug", skip_all)]
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
#[tracing::instrument(level = "debug", skip_all)]
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
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %id, status = outcome.status().as_str()))]
pub async fn finish(
    conn: &mut PgConnection,
    id: OrderId,
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
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %id))]
pub async fn cancel(
    conn: &mut PgConnection,
    id: OrderId,
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
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %id))]
pub async fn note(
    conn: &mut PgConnection,
    id: OrderId,
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
#[tracing::instrument(level = "debug", skip_all, fields(limit = limit))]
pub async fn expired(
    conn: &mut PgConnection,
    timeout: Duration,
    limit: i64,
) -> Result<Vec<OrderId>, sqlx::Error> {
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
