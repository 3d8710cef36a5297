//! The SQL of payment-service: one row per order. Both a charge and a cancellation start by
//! upserting that row, which locks it, so the two never interleave: either the cancellation
//! comes first (a `VOID` row) and nothing is charged, or the charge commits first and the
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
    /// Cancelled before any payment: a tombstone, never shown by the API.
    Void,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Processed => "PROCESSED",
            Self::Failed => "FAILED",
            Self::Refunded => "REFUNDED",
            Self::Void => "VOID",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "PROCESSED" => Self::Processed,
            "FAILED" => Self::Failed,
            "REFUNDED" => Self::Refunded,
            "VOID" => Self::Void,
            _ => Self::Pending,
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct PaymentRow {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount_cents: Option<i64>,
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

    /// The amount charged (zero for a `VOID` row, which charges nothing).
    pub fn amount(&self) -> Money {
        Money::from_cents(self.amount_cents.unwrap_or(0))
    }

    pub fn attempts(&self) -> u32 {
        self.attempts.max(0) as u32
    }
}

const COLUMNS: &str =
    "order_id, payment_id, amount_cents, status, attempts, last_error, created_at, updated_at";

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

/// Locks the order's payment row, creating it `PENDING` with no attempts if there is none.
pub async fn start(
    conn: &mut PgConnection,
    order_id: Uuid,
    amount: Money,
) -> Result<PaymentRow, sqlx::Error> {
    upsert(conn, order_id, Some(amount), PaymentStatus::Pending).await
}

/// Locks the order's payment row, leaving a `VOID` tombstone if there is none.
pub async fn void(conn: &mut PgConnection, order_id: Uuid) -> Result<PaymentRow, sqlx::Error> {
    upsert(conn, order_id, None, PaymentStatus::Void).await
}

/// Inserts the row, or — if it exists — locks and returns it unchanged.
async fn upsert(
    conn: &mut PgConnection,
    order_id: Uuid,
    amount: Option<Money>,
    status: PaymentStatus,
) -> Result<PaymentRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO payments (order_id, payment_id, amount_cents, status) VALUES ($1, $2, $3, $4)
         ON CONFLICT (order_id) DO UPDATE SET updated_at = payments.updated_at
         RETURNING {COLUMNS}"
    )))
    .bind(order_id)
    .bind(Uuid::now_v7())
    .bind(amount.map(Money::cents))
    .bind(status.as_str())
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

/// Sets the status of the order's payment, with a note.
pub async fn set_status(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: PaymentStatus,
    note: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET status = $2, last_error = $3, updated_at = now() WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(status.as_str())
    .bind(note)
    .execute(conn)
    .await?;
    Ok(())
}
