//! The SQL of payment-service: one row per order, the single place where a charge and a
//! cancellation of that order meet.
//!
//! The consumer writes only quick changes: "this order is to be paid" ([`want`]) and
//! "this order is cancelled" ([`void`] and what follows). The worker claims due rows with a
//! lease ([`claim_due`]), commits each attempt before the provider hears of it
//! ([`start_attempt`]), and records the answer under the row lock, checking its lease
//! ([`lock_leased`]) so a worker that lost its row writes nothing.

use chrono::{DateTime, Utc};
use common::money::Money;
use common::text_enum::TextEnum;
use common::trace::TraceHeaders;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};
use std::time::Duration;
use uuid::Uuid;

/// The channel on which a commit that makes a payment due wakes every replica's worker.
pub const DUE_CHANNEL: &str = "payments_due";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum PaymentStatus {
    /// Attempts are still being made.
    Pending,
    Processed,
    Failed,
    Refunded,
    /// Cancelled before any payment: a tombstone, never shown by the API.
    Void,
}

impl TextEnum for PaymentStatus {
    const ALL: &'static [Self] = &[
        Self::Pending,
        Self::Processed,
        Self::Failed,
        Self::Refunded,
        Self::Void,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Processed => "PROCESSED",
            Self::Failed => "FAILED",
            Self::Refunded => "REFUNDED",
            Self::Void => "VOID",
        }
    }
}

common::text_enum_sqlx!(PaymentStatus);

#[derive(Debug, Clone, FromRow)]
pub struct PaymentRow {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount_cents: Option<i64>,
    pub status: PaymentStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attempt_key: Option<String>,
    pub attempt_open: bool,
    pub unknown_tries: i32,
    pub charge_id: Option<String>,
    pub refund_id: Option<String>,
    pub cancel_requested: bool,
    pub lease: Option<Uuid>,
    pub reserved_event_id: Option<Uuid>,
    pub cancel_event_id: Option<Uuid>,
    /// The trace the payment was asked for in; the worker's steps continue it.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl PaymentRow {
    /// The amount charged (zero for a `VOID` row, which charges nothing).
    pub fn amount(&self) -> Money {
        Money::from_cents(self.amount_cents.unwrap_or(0))
    }

    pub fn attempts(&self) -> u32 {
        self.attempts.max(0) as u32
    }

    /// A charge succeeded but the order was cancelled: it is to be refunded.
    pub fn refund_due(&self) -> bool {
        self.status == PaymentStatus::Processed && self.cancel_requested
    }
}

const COLUMNS: &str = "order_id, payment_id, amount_cents, status, attempts, last_error, \
    created_at, updated_at, attempt_key, attempt_open, unknown_tries, charge_id, refund_id, \
    cancel_requested, lease, reserved_event_id, cancel_event_id, traceparent, tracestate";

/// The payment of an order, as the API shows it (a `VOID` tombstone is not a payment).
pub async fn find(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1 AND status <> 'VOID'"
    )))
    .bind(order_id)
    .fetch_optional(db)
    .await
}

/// Takes a transaction-scoped lock per order, in one fixed order, so that two batches
/// touching the same orders in opposite orders wait for each other instead of deadlocking.
pub async fn lock_orders(conn: &mut PgConnection, order_ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock(k)) FROM
           (SELECT DISTINCT hashtextextended(id::text, 0) AS k FROM unnest($1::uuid[]) AS id ORDER BY k) AS keys",
    )
    .bind(order_ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the order is to be paid, due now, and wakes the workers at commit. Returns
/// the row already there instead, if any (a duplicate, or a `VOID` tombstone that wins).
/// The worker's steps join `trace`, the trace of the message that asked.
pub async fn want(
    conn: &mut PgConnection,
    order_id: Uuid,
    amount: Money,
    caused_by: Uuid,
    trace: &TraceHeaders,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO payments (order_id, payment_id, amount_cents, status, due_at, reserved_event_id,
                               traceparent, tracestate)
         VALUES ($1, $2, $3, 'PENDING', now(), $4, $5, $6) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(Uuid::now_v7())
    .bind(amount.cents())
    .bind(caused_by)
    .bind(&trace.traceparent)
    .bind(&trace.tracestate)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        wake_workers(conn).await?;
        return Ok(None);
    }
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1"
    )))
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// Locks the order's payment row, leaving a `VOID` tombstone if there is none.
pub async fn void(
    conn: &mut PgConnection,
    order_id: Uuid,
    caused_by: Uuid,
) -> Result<PaymentRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO payments (order_id, payment_id, amount_cents, status, cancel_event_id)
         VALUES ($1, $2, NULL, 'VOID', $3)
         ON CONFLICT (order_id) DO UPDATE SET updated_at = payments.updated_at
         RETURNING {COLUMNS}"
    )))
    .bind(order_id)
    .bind(Uuid::now_v7())
    .bind(caused_by)
    .fetch_one(conn)
    .await
}

/// Marks a cancelled order whose next step is up to the worker: an open attempt finishes
/// first; a success is refunded (due now when `refund_now`).
pub async fn request_cancel(
    conn: &mut PgConnection,
    order_id: Uuid,
    caused_by: Uuid,
    refund_now: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET cancel_requested = true, cancel_event_id = $2, updated_at = now(),
                due_at = CASE WHEN $3 THEN now() ELSE due_at END
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(caused_by)
    .bind(refund_now)
    .execute(&mut *conn)
    .await?;
    if refund_now {
        wake_workers(conn).await?;
    }
    Ok(())
}

/// Ends a payment with no charge in flight: nothing more will be attempted.
pub async fn fail(conn: &mut PgConnection, order_id: Uuid, note: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET status = 'FAILED', last_error = $2, attempt_open = false,
                due_at = NULL, lease = NULL, updated_at = now()
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(())
}

/// `NOTIFY`, delivered to every listening worker when the transaction commits.
async fn wake_workers(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(DUE_CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes up to `limit` due rows for `lease`: each gets a fresh lease token and is not due
/// again until the lease ends, so a worker that dies mid-call leaves it to another later.
pub async fn claim_due(
    db: impl PgExecutor<'_>,
    limit: i64,
    lease: Duration,
) -> Result<Vec<PaymentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE payments SET due_at = now() + make_interval(secs => $2), lease = gen_random_uuid()
         WHERE order_id IN (
             SELECT order_id FROM payments WHERE due_at <= now()
             ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    )))
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(db)
    .await
}

/// How long until the next row is due, if any.
pub async fn next_due_in(db: impl PgExecutor<'_>) -> Result<Option<Duration>, sqlx::Error> {
    let seconds: Option<f64> = sqlx::query_scalar(
        "SELECT greatest(0, extract(epoch FROM min(due_at) - now()))::float8 FROM payments
         WHERE due_at IS NOT NULL",
    )
    .fetch_one(db)
    .await?;
    Ok(seconds.map(Duration::from_secs_f64))
}

/// Rows the worker will go on with, for the log at start.
pub async fn unfinished(db: impl PgExecutor<'_>) -> Result<Vec<PaymentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE due_at IS NOT NULL ORDER BY due_at LIMIT 100"
    )))
    .fetch_all(db)
    .await
}

/// Commits the next attempt (its number and key) before the provider is asked. `None`
/// when the row is no longer this worker's or no longer to be charged.
pub async fn start_attempt(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
    lease: Uuid,
) -> Result<Option<(u32, String)>, sqlx::Error> {
    let started: Option<(i32, String)> = sqlx::query_as(
        "UPDATE payments SET attempts = attempts + 1, attempt_open = true, unknown_tries = 0,
                attempt_key = order_id::text || ':' || (attempts + 1), updated_at = now()
         WHERE order_id = $1 AND lease = $2 AND status = 'PENDING'
           AND NOT attempt_open AND NOT cancel_requested
         RETURNING attempts, attempt_key",
    )
    .bind(order_id)
    .bind(lease)
    .fetch_optional(db)
    .await?;
    Ok(started.map(|(n, key)| (n.max(0) as u32, key)))
}

/// Locks the row if this worker still holds it.
pub async fn lock_leased(
    conn: &mut PgConnection,
    order_id: Uuid,
    lease: Uuid,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1 AND lease = $2 FOR UPDATE"
    )))
    .bind(order_id)
    .bind(lease)
    .fetch_optional(conn)
    .await
}

/// The open attempt succeeded. A cancelled order's refund is due at once.
pub async fn processed(
    conn: &mut PgConnection,
    order_id: Uuid,
    charge_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET status = 'PROCESSED', charge_id = $2, attempt_open = false,
                unknown_tries = 0, last_error = NULL, lease = NULL, updated_at = now(),
                due_at = CASE WHEN cancel_requested THEN now() ELSE NULL END
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(charge_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The open attempt was declined; the next one is due after `delay`.
pub async fn declined(
    conn: &mut PgConnection,
    order_id: Uuid,
    note: &str,
    delay: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET attempt_open = false, last_error = $2, lease = NULL, updated_at = now(),
                due_at = now() + make_interval(secs => $3)
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(note)
    .bind(delay.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

/// The outcome of the open attempt (or of the refund) is unknown: ask again, with the same
/// key, after `delay`.
pub async fn unknown(
    conn: &mut PgConnection,
    order_id: Uuid,
    note: &str,
    delay: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET unknown_tries = unknown_tries + 1, last_error = $2, lease = NULL,
                updated_at = now(), due_at = now() + make_interval(secs => $3)
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(note)
    .bind(delay.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

/// The charge was given back.
pub async fn refunded(
    conn: &mut PgConnection,
    order_id: Uuid,
    refund_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET status = 'REFUNDED', refund_id = $2, unknown_tries = 0,
                last_error = 'order cancelled after payment', due_at = NULL, lease = NULL,
                updated_at = now()
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(refund_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives up a row the worker has nothing to do with (its state moved on meanwhile).
pub async fn release(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
    lease: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET due_at = NULL, lease = NULL WHERE order_id = $1 AND lease = $2",
    )
    .bind(order_id)
    .bind(lease)
    .execute(db)
    .await?;
    Ok(())
}
