//! The SQL of payment-service: one row per order, the single place where a charge and a
//! cancellation of that order meet.
//!
//! The consumer writes only quick changes: "this order is to be paid" ([`want`]) and
//! "this order is cancelled" ([`void`] and what follows). The worker claims due rows with a
//! lease, committing each row's next attempt with the claim before the provider hears of
//! it ([`claim_due`]), and records the answer under the row lock, checking its lease
//! ([`lock_leased_all`]) so a worker that lost its row writes nothing.
//!
//! # Layout
//! - this module: the row, its status, and [`find`] for the API;
//! - `requests`: the consumer's writes — [`want`], [`void`], [`request_cancel`];
//! - `first_attempt`: with the built-in simulator, the first attempt charged in the
//!   consumer's transaction ([`charge_first_attempt`]);
//! - `lease`: the worker's hold on a row — [`claim_due`], [`lock_leased_all`],
//!   [`release`], [`hand_back`];
//! - [`answers`]: what answers do to the rows — a [`answers::Batch`] of processed,
//!   declined, unknown, refunded and failed ones, one statement per kind; [`fail`].

pub mod answers;
mod first_attempt;
mod lease;
mod requests;

pub use answers::fail;
pub use first_attempt::{FirstAttempt, InlineSimulator, charge_first_attempt};
pub use lease::{claim_due, hand_back, lock_leased_all, release, unfinished};
pub use requests::{Wanted, lock_orders, request_cancel, void, want};

use chrono::{DateTime, Utc};
use common::text_enum::TextEnum;
use contract::OrderId;
use contract::money::Money;
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};
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
    pub order_id: OrderId,
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
    /// The claim that returned this row started its next attempt ([`claim_due`]); false
    /// for a row read any other way.
    #[sqlx(default)]
    pub attempt_started: bool,
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
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id))]
pub async fn find(
    db: impl PgExecutor<'_>,
    order_id: OrderId,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1 AND status <> 'VOID'"
    )))
    .bind(order_id)
    .fetch_optional(db)
    .await
}
