//! The SQL of payment-service. Every transaction about an order first takes that order's
//! advisory lock, so a charge attempt and a cancellation never interleave: either the
//! cancellation comes first and nothing is charged, or the charge commits first and the
//! cancellation refunds it.

use chrono::{DateTime, Utc};
use common::money::Money;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum PaymentStatus {
    /// Attempts are still being made.
    Pending,
    Processed,
    Failed,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Processed => "PROCESSED",
            Self::Failed => "FAILED",
            Self::Refunded => "REFUNDED",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "PROCESSED" => Self::Processed,
            "FAILED" => Self::Failed,
            "REFUNDED" => Self::Refunded,
            _ => Self::Pending,
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct PaymentRow {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount_cents: i64,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PaymentRow {
    pub fn status(&self) -> PaymentStatus {
        PaymentStatus::parse(&self.status)
    }

    pub fn amount(&self) -> Money {
        Money::from_cents(self.amount_cents)
    }

    pub fn attempts(&self) -> u32 {
        self.attempts.max(0) as u32
    }
}

const COLUMNS: &str =
    "order_id, payment_id, amount_cents, status, attempts, last_error, created_at, updated_at";

/// Serializes all transactions about `order_id` until commit.
pub async fn lock_order(conn: &mut PgConnection, order_id: Uuid) -> Result<(), sqlx::Error> {
    let bits = order_id.as_u128();
    let key = ((bits >> 64) as u64 ^ bits as u64) as i64;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn is_cancelled(conn: &mut PgConnection, order_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM cancelled_orders WHERE order_id = $1)")
        .bind(order_id)
        .fetch_one(conn)
        .await
}

pub async fn mark_cancelled(conn: &mut PgConnection, order_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO cancelled_orders (order_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn find(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1"
    )))
    .bind(order_id)
    .fetch_optional(db)
    .await
}

/// The order's payment, created `PENDING` with no attempts if it has none yet.
pub async fn get_or_start(
    conn: &mut PgConnection,
    order_id: Uuid,
    amount: Money,
) -> Result<PaymentRow, sqlx::Error> {
    sqlx::query(
        "INSERT INTO payments (order_id, payment_id, amount_cents, status)
         VALUES ($1, $2, $3, 'PENDING') ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(Uuid::now_v7())
    .bind(amount.cents())
    .execute(&mut *conn)
    .await?;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1 FOR UPDATE"
    )))
    .bind(order_id)
    .fetch_one(conn)
    .await
}

/// Records an attempt's result: the attempt count and the new status.
pub async fn record(
    conn: &mut PgConnection,
    order_id: Uuid,
    attempts: u32,
    status: PaymentStatus,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET attempts = $2, status = $3, last_error = $4, updated_at = now()
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(attempts as i32)
    .bind(status.as_str())
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets the status of the order's payment if it is `from`; returns the payment if it was.
pub async fn transition(
    conn: &mut PgConnection,
    order_id: Uuid,
    from: PaymentStatus,
    to: PaymentStatus,
    note: &str,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE payments SET status = $3, last_error = $4, updated_at = now()
         WHERE order_id = $1 AND status = $2
         RETURNING {COLUMNS}"
    )))
    .bind(order_id)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(note)
    .fetch_optional(conn)
    .await
}
