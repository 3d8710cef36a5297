//! What the consumer writes, quickly and inside its unit of work: "this order is to be
//! paid" ([`want`], its first attempt started when the consumer's replica can ask at once) and "this order is cancelled" ([`void`], [`request_cancel`]). A commit
//! that makes a payment due wakes every replica's worker.

use super::{COLUMNS, DUE_CHANNEL, PaymentRow};
use crate::provider::charge_key;
use common::trace::TraceHeaders;
use contract::OrderId;
use contract::money::Money;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgConnection};
use std::time::Duration;
use uuid::Uuid;

/// Takes a transaction-scoped lock per order, in one fixed order, so that two batches
/// touching the same orders in opposite orders wait for each other instead of deadlocking.
#[tracing::instrument(level = "debug", skip_all, fields(orders = order_ids.len()))]
pub async fn lock_orders(
    conn: &mut PgConnection,
    order_ids: &[OrderId],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock(k)) FROM
           (SELECT DISTINCT hashtextextended(id::text, 0) AS k FROM unnest($1::uuid[]) AS id ORDER BY k) AS keys",
    )
    .bind(order_ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// What [`want`] found or left.
#[derive(Debug)]
pub enum Wanted {
    /// A new row, due now; the workers are woken at commit.
    Due,
    /// A new row whose first attempt is started (number and key committed with the
    /// transaction) and leased to the caller, who asks the provider once it commits. A
    /// crash before the answer is recorded leaves the attempt open to whoever claims the
    /// row when the lease ends, under the same key.
    Started(PaymentRow),
    /// The row already there: a duplicate, or a `VOID` tombstone that wins.
    Already(PaymentRow),
}

/// Records that the order is to be paid. With `lease`, its first attempt is started and
/// held for that long by the caller, who asks the provider right after the commit — the
/// workers' wake-up, claim and commit spared; without, it is due now and the workers are
/// woken at commit. The worker's steps join `trace`, the trace of the message that asked.
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id))]
pub async fn want(
    conn: &mut PgConnection,
    order_id: OrderId,
    amount: Money,
    caused_by: Uuid,
    trace: &TraceHeaders,
    lease: Option<Duration>,
) -> Result<Wanted, sqlx::Error> {
    let inserted = match lease {
        None => want_due(conn, order_id, amount, caused_by, trace).await?,
        Some(lease) => {
            let mut arguments = new_payment(order_id, amount, caused_by, trace)?;
            let encoded = arguments
                .add(lease.as_secs_f64())
                .and_then(|()| arguments.add(charge_key(order_id, 1)));
            encoded.map_err(sqlx::Error::Encode)?;
            let started: Option<PaymentRow> = sqlx::query_as_with(
                sqlx::AssertSqlSafe(format!(
                    "INSERT INTO payments (order_id, payment_id, amount_cents, status, due_at,
                                       reserved_event_id, traceparent, tracestate, attempts,
                                       attempt_open, attempt_key, lease)
                 VALUES ($1, $2, $3, 'PENDING', now() + make_interval(secs => $7), $4, $5, $6,
                         1, true, $8, gen_random_uuid())
                 ON CONFLICT (order_id) DO NOTHING
                 RETURNING {COLUMNS}, true AS attempt_started"
                )),
                arguments,
            )
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(row) = started {
                return Ok(Wanted::Started(row));
            }
            false
        }
    };
    if inserted {
        return Ok(Wanted::Due);
    }
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1"
    )))
    .bind(order_id)
    .fetch_one(conn)
    .await?;
    Ok(Wanted::Already(row))
}

/// Inserts the row due now and, if it is new, wakes the workers at commit; says whether it
/// was new. The insert and the `NOTIFY` in one statement: one round trip fewer.
async fn want_due(
    conn: &mut PgConnection,
    order_id: OrderId,
    amount: Money,
    caused_by: Uuid,
    trace: &TraceHeaders,
) -> Result<bool, sqlx::Error> {
    let mut arguments = new_payment(order_id, amount, caused_by, trace)?;
    arguments.add(DUE_CHANNEL).map_err(sqlx::Error::Encode)?;
    let inserted = sqlx::query_with(
        "WITH inserted AS (
             INSERT INTO payments (order_id, payment_id, amount_cents, status, due_at,
                                   reserved_event_id, traceparent, tracestate)
             VALUES ($1, $2, $3, 'PENDING', now(), $4, $5, $6)
             ON CONFLICT (order_id) DO NOTHING RETURNING order_id)
         SELECT pg_notify($7, '') FROM inserted",
        arguments,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// $1 to $6 of both inserts of a wanted payment: the order, a new payment id, the amount,
/// the event that asked for it and that event's trace.
fn new_payment(
    order_id: OrderId,
    amount: Money,
    caused_by: Uuid,
    trace: &TraceHeaders,
) -> Result<PgArguments, sqlx::Error> {
    let mut arguments = PgArguments::default();
    let encoded = (|| {
        arguments.add(order_id)?;
        arguments.add(Uuid::now_v7())?;
        arguments.add(amount.cents())?;
        arguments.add(caused_by)?;
        arguments.add(&trace.traceparent)?;
        arguments.add(&trace.tracestate)
    })();
    encoded.map_err(sqlx::Error::Encode)?;
    Ok(arguments)
}

/// Locks the order's payment row, leaving a `VOID` tombstone if there is none.
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id))]
pub async fn void(
    conn: &mut PgConnection,
    order_id: OrderId,
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
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id))]
pub async fn request_cancel(
    conn: &mut PgConnection,
    order_id: OrderId,
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

/// `NOTIFY`, delivered to every listening worker when the transaction commits.
async fn wake_workers(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(DUE_CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}
