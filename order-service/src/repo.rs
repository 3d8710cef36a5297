//! The SQL of order-service. Functions take a connection, so the caller decides whether
//! they run inside a unit of work or straight on the pool.

use crate::domain::{NewOrder, OrderStatus, Outcome};
use chrono::{DateTime, Utc};
use common::events::{CancellationReason, Envelope, LineItem};
use common::money::Money;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgExecutor};
use std::time::Duration;
use uuid::Uuid;

const COLUMNS: &str =
    "id, customer_id, items, total_cents, status, cancellation_reason, created_at, updated_at";

#[derive(Debug, Clone, FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub customer_id: String,
    pub items: Json<Vec<LineItem>>,
    pub total_cents: i64,
    pub status: String,
    pub cancellation_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OrderRow {
    pub fn status(&self) -> OrderStatus {
        OrderStatus::parse(&self.status).unwrap_or(OrderStatus::Pending)
    }

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
        self.customer_id == order.customer_id
            && self.items.0 == order.items
            && self.total() == order.total
    }
}

/// Inserts a `PENDING` order. With an idempotency key already used, inserts nothing and
/// returns `None`; a concurrent insert with the same key waits for the first to commit.
pub async fn insert(
    conn: &mut PgConnection,
    order: &NewOrder,
    idempotency_key: Option<&str>,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO orders (id, customer_id, items, total_cents, status, idempotency_key)
         VALUES ($1, $2, $3, $4, 'PENDING', $5)
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(&order.customer_id)
    .bind(Json(&order.items))
    .bind(order.total.cents())
    .bind(idempotency_key)
    .fetch_optional(conn)
    .await
}

pub async fn find_by_idempotency_key(
    conn: &mut PgConnection,
    key: &str,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE idempotency_key = $1"
    )))
    .bind(key)
    .fetch_optional(conn)
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

/// Filters for listing orders.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub customer_id: Option<String>,
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
    .bind(filter.customer_id.as_deref())
    .bind(filter.limit)
    .bind(filter.offset)
    .fetch_all(db)
    .await
}

/// How many orders have each status.
pub async fn count_by_status(db: impl PgExecutor<'_>) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, count(*) FROM orders GROUP BY status")
        .fetch_all(db)
        .await
}

/// Ends a `PENDING` order. Returns the updated order, or `None` when it had already ended
/// (or does not exist): the row lock makes concurrent endings take turns, and only the
/// first finds it `PENDING`.
pub async fn finish(
    conn: &mut PgConnection,
    id: Uuid,
    outcome: Outcome,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE orders SET status = $2, cancellation_reason = $3, updated_at = now()
         WHERE id = $1 AND status = 'PENDING'
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(outcome.status().as_str())
    .bind(outcome.reason().map(CancellationReason::as_str))
    .fetch_optional(conn)
    .await
}

/// Cancels up to `limit` orders `PENDING` for longer than `timeout`, skipping rows another
/// replica's sweeper or a consumer holds.
pub async fn expire(
    conn: &mut PgConnection,
    timeout: Duration,
    limit: i64,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE orders SET status = 'CANCELLED', cancellation_reason = 'TIMEOUT', updated_at = now()
         WHERE id IN (
             SELECT id FROM orders
             WHERE status = 'PENDING' AND created_at < now() - make_interval(secs => $1)
             ORDER BY created_at LIMIT $2
             FOR UPDATE SKIP LOCKED)
         AND status = 'PENDING'
         RETURNING {COLUMNS}"
    )))
    .bind(timeout.as_secs_f64())
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Adds an event to the order's timeline; nothing if the order is unknown here.
pub async fn record_event(
    conn: &mut PgConnection,
    envelope: &Envelope,
    source: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO order_events (event_id, order_id, event_type, source, occurred_at)
         SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM orders WHERE id = $2)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(envelope.event_id)
    .bind(envelope.event.order_id())
    .bind(envelope.event.name())
    .bind(source)
    .bind(envelope.timestamp)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct TimelineRow {
    pub event_id: Uuid,
    pub event_type: String,
    pub source: String,
    pub occurred_at: DateTime<Utc>,
}

pub async fn timeline(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
) -> Result<Vec<TimelineRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_id, event_type, source, occurred_at FROM order_events
         WHERE order_id = $1 ORDER BY occurred_at, recorded_at",
    )
    .bind(order_id)
    .fetch_all(db)
    .await
}
