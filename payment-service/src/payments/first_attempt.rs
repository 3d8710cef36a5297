//! The first attempt of a payment, charged in the consumer's own transaction when the
//! provider is the built-in simulator.
//!
//! The simulator keeps its ledger in this database, so asking it and recording its answer
//! are one commit: the ledger row, the payment's answer and its event are written together
//! or not at all. No outcome can be unknown and nothing can be charged twice (a batch that
//! rolls back rolls the ledger back too, and its redelivery charges afresh). That spares a
//! payment the worker's claim, call and record — three transactions and a `NOTIFY` hop,
//! which were most of a saga's commits (BENCHMARKS.md, "Where the speed went"). A declined
//! first attempt leaves the next one to the worker, after its backoff, as with any provider;
//! refunds go through the worker too. With an HTTP provider every attempt goes through the
//! worker, outside any transaction ([`super::want`]).

use super::{COLUMNS, PaymentRow, PaymentStatus};
use crate::provider::charge_key;
use crate::provider::simulator::{self, decide, new_charge_id};
use common::retry::Backoff;
use common::text_enum::TextEnum;
use common::trace::TraceHeaders;
use contract::OrderId;
use contract::money::Money;
use sqlx::PgConnection;
use std::time::Duration;
use uuid::Uuid;

/// The simulator's rules for the attempts it answers in the consumer's transaction.
#[derive(Debug, Clone)]
pub struct InlineSimulator {
    pub success_rate: f64,
    pub seed: Option<u64>,
    pub max_attempts: u32,
    pub retry_base: Duration,
}

/// What the first attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstAttempt {
    /// Charged: `PROCESSED`.
    Processed { payment_id: Uuid, charge_id: String },
    /// Declined; the worker makes the next attempt after `retry_in`.
    Declined { retry_in: Duration },
    /// Declined, and it was the only attempt allowed: `FAILED`.
    Failed { reason: String },
}

/// Charges the order's first attempt and records the answer, unless the order already has
/// a payment row (a duplicate, or a `VOID` tombstone that wins), which it returns instead.
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id))]
pub async fn charge_first_attempt(
    conn: &mut PgConnection,
    simulator: &InlineSimulator,
    order_id: OrderId,
    amount: Money,
    caused_by: Uuid,
    trace: &TraceHeaders,
) -> Result<Result<FirstAttempt, PaymentRow>, sqlx::Error> {
    let row = NewRow {
        order_id,
        payment_id: Uuid::now_v7(),
        amount,
        key: charge_key(order_id, 1),
        caused_by,
        trace,
    };
    let outcome = match simulator.seed {
        // Outcomes at random: decided before the row exists, written in one statement.
        None => {
            let answer = answer(simulator, decide(None, simulator.success_rate, 0, 1), &row);
            if insert_answered(conn, &row, &answer).await? {
                Some(answer)
            } else {
                None
            }
        }
        // Reproducible outcomes follow the order's rank among the orders charged, which is
        // given only to an order new here: the row first, then its rank, then the answer.
        Some(seed) => {
            if insert_open(conn, &row).await? {
                let rank = simulator::rank(&mut *conn, order_id).await?;
                let succeeded = decide(Some(seed), simulator.success_rate, rank, 1);
                let answer = answer(simulator, succeeded, &row);
                record_answer(conn, &row, &answer).await?;
                Some(answer)
            } else {
                None
            }
        }
    };
    // The call is counted by the caller once its transaction commits (see
    // [`FirstAttempt::metric`]): a batch that rolls back charged nothing.
    match outcome {
        Some(answer) => Ok(Ok(answer.outcome)),
        None => existing(conn, order_id).await.map(Err),
    }
}

/// The payment row about to be written.
struct NewRow<'a> {
    order_id: OrderId,
    payment_id: Uuid,
    amount: Money,
    key: String,
    caused_by: Uuid,
    trace: &'a TraceHeaders,
}

/// The simulator's answer and what it makes of the row.
struct Answer {
    outcome: FirstAttempt,
    /// The ledger's id for this try (a declined one has one too, as at a card processor).
    ledger_charge_id: String,
    succeeded: bool,
    status: PaymentStatus,
    last_error: Option<String>,
    /// When the next attempt is due, after a decline.
    retry_in: Option<Duration>,
}

impl FirstAttempt {
    /// The outcome label of `payment_provider_requests_total` for this answer.
    pub fn metric(&self) -> &'static str {
        match self {
            Self::Processed { .. } => "succeeded",
            Self::Declined { .. } | Self::Failed { .. } => "declined",
        }
    }
}

fn answer(simulator: &InlineSimulator, succeeded: bool, row: &NewRow) -> Answer {
    let ledger_charge_id = new_charge_id();
    if succeeded {
        return Answer {
            outcome: FirstAttempt::Processed {
                payment_id: row.payment_id,
                charge_id: ledger_charge_id.clone(),
            },
            ledger_charge_id,
            succeeded,
            status: PaymentStatus::Processed,
            last_error: None,
            retry_in: None,
        };
    }
    let declined = format!("declined: {}", simulator::DECLINE_REASON);
    if simulator.max_attempts <= 1 {
        let reason = "Payment declined 1 times".to_owned();
        return Answer {
            outcome: FirstAttempt::Failed {
                reason: reason.clone(),
            },
            ledger_charge_id,
            succeeded,
            status: PaymentStatus::Failed,
            last_error: Some(reason),
            retry_in: None,
        };
    }
    let retry_in = Backoff::nth_delay(simulator.retry_base, 1);
    Answer {
        outcome: FirstAttempt::Declined { retry_in },
        ledger_charge_id,
        succeeded,
        status: PaymentStatus::Pending,
        last_error: Some(declined),
        retry_in: Some(retry_in),
    }
}

impl Answer {
    /// The provider's charge id on the payment row: only a success has one.
    fn charge_id(&self) -> Option<&str> {
        self.succeeded.then_some(self.ledger_charge_id.as_str())
    }

    fn retry_secs(&self) -> Option<f64> {
        self.retry_in.map(|delay| delay.as_secs_f64())
    }
}

/// The row with its answer and the ledger's entry, in one statement; false if the order
/// had a row already (then nothing is written).
async fn insert_answered(
    conn: &mut PgConnection,
    row: &NewRow<'_>,
    answer: &Answer,
) -> Result<bool, sqlx::Error> {
    let inserted: i64 = sqlx::query_scalar(
        "WITH payment AS (
             INSERT INTO payments (order_id, payment_id, amount_cents, status, attempts,
                                   attempt_key, charge_id, last_error, due_at,
                                   reserved_event_id, traceparent, tracestate)
             VALUES ($1, $2, $3, $4, 1, $5, $6, $7, now() + make_interval(secs => $8),
                     $9, $10, $11)
             ON CONFLICT (order_id) DO NOTHING RETURNING order_id),
         ledger AS (
             INSERT INTO simulator_charges (idempotency_key, order_id, amount_cents, charge_id, succeeded)
             SELECT $5, order_id, $3, $12, $13 FROM payment)
         SELECT count(*) FROM payment",
    )
    .bind(row.order_id)
    .bind(row.payment_id)
    .bind(row.amount.cents())
    .bind(answer.status.as_str())
    .bind(&row.key)
    .bind(answer.charge_id())
    .bind(&answer.last_error)
    .bind(answer.retry_secs())
    .bind(row.caused_by)
    .bind(&row.trace.traceparent)
    .bind(&row.trace.tracestate)
    .bind(&answer.ledger_charge_id)
    .bind(answer.succeeded)
    .fetch_one(conn)
    .await?;
    Ok(inserted == 1)
}

/// The row with its first attempt open (not due: this transaction answers it); false if
/// the order had a row already.
async fn insert_open(conn: &mut PgConnection, row: &NewRow<'_>) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO payments (order_id, payment_id, amount_cents, status, attempts, attempt_key,
                               attempt_open, reserved_event_id, traceparent, tracestate)
         VALUES ($1, $2, $3, 'PENDING', 1, $4, true, $5, $6, $7)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(row.order_id)
    .bind(row.payment_id)
    .bind(row.amount.cents())
    .bind(&row.key)
    .bind(row.caused_by)
    .bind(&row.trace.traceparent)
    .bind(&row.trace.tracestate)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The answer to the open first attempt, and the ledger's entry, in one statement.
async fn record_answer(
    conn: &mut PgConnection,
    row: &NewRow<'_>,
    answer: &Answer,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH ledger AS (
             INSERT INTO simulator_charges (idempotency_key, order_id, amount_cents, charge_id, succeeded)
             VALUES ($2, $1, $3, $4, $5))
         UPDATE payments SET status = $6, attempt_open = false, charge_id = $7, last_error = $8,
                due_at = now() + make_interval(secs => $9), updated_at = now()
         WHERE order_id = $1",
    )
    .bind(row.order_id)
    .bind(&row.key)
    .bind(row.amount.cents())
    .bind(&answer.ledger_charge_id)
    .bind(answer.succeeded)
    .bind(answer.status.as_str())
    .bind(answer.charge_id())
    .bind(&answer.last_error)
    .bind(answer.retry_secs())
    .execute(conn)
    .await?;
    Ok(())
}

async fn existing(conn: &mut PgConnection, order_id: OrderId) -> Result<PaymentRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1"
    )))
    .bind(order_id)
    .fetch_one(conn)
    .await
}
