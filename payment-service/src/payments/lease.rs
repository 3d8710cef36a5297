//! The worker's hold on a row: it claims due rows with a lease, starting (committing) each
//! row's next attempt before the provider hears of it ([`claim_due`]), and records an
//! answer only while it still holds the lease ([`lock_leased_all`]), so a worker that lost its
//! row writes nothing.

use super::{COLUMNS, PaymentRow};
use contract::OrderId;
use sqlx::{PgConnection, PgExecutor};
use std::time::Duration;
use uuid::Uuid;

/// Takes up to `limit` due rows for `lease`: each gets a fresh lease token and is not due
/// again until the lease ends, so a worker that dies mid-call leaves it to another later.
/// A row whose next attempt is to be made gets it started in the same statement (number
/// and key committed before the provider hears of it; `attempt_started` says so), which
/// spares every payment a statement and a commit; one that dies before asking leaves an
/// open attempt, which the next worker asks about under the same key.
/// The rows are chosen in a CTE, which runs once: as `WHERE order_id IN (SELECT … LIMIT
/// … SKIP LOCKED)` the planner may run the subquery again and claim more than `limit`
/// rows, and the worker, out of slots, then left the extra ones to wait out their lease.
#[tracing::instrument(level = "debug", skip_all, fields(limit = limit))]
pub async fn claim_due(
    db: impl PgExecutor<'_>,
    limit: i64,
    lease: Duration,
) -> Result<Vec<PaymentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH due AS (
             SELECT order_id AS due_id,
                    status = 'PENDING' AND NOT attempt_open AND NOT cancel_requested AS starts
             FROM payments WHERE due_at <= now()
             ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         UPDATE payments SET due_at = now() + make_interval(secs => $2), lease = gen_random_uuid(),
                attempts = attempts + starts::int, attempt_open = attempt_open OR starts,
                unknown_tries = CASE WHEN starts THEN 0 ELSE unknown_tries END,
                attempt_key = CASE WHEN starts THEN order_id::text || ':' || (attempts + 1)
                                   ELSE attempt_key END,
                updated_at = CASE WHEN starts THEN now() ELSE updated_at END
         FROM due WHERE payments.order_id = due.due_id
         RETURNING {COLUMNS}, starts AS attempt_started"
    )))
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(db)
    .await
}

/// Rows the worker will go on with, for the log at start.
pub async fn unfinished(db: impl PgExecutor<'_>) -> Result<Vec<PaymentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE due_at IS NOT NULL ORDER BY due_at LIMIT 100"
    )))
    .fetch_all(db)
    .await
}

/// Locks, in one statement and in a fixed order, the rows of `held` (order id and lease)
/// that this worker still holds; a row whose lease another worker took is left out.
#[tracing::instrument(level = "debug", skip_all, fields(payments = held.len()))]
pub async fn lock_leased_all(
    conn: &mut PgConnection,
    held: &[(OrderId, Uuid)],
) -> Result<Vec<PaymentRow>, sqlx::Error> {
    let (order_ids, leases): (Vec<OrderId>, Vec<Uuid>) = held.iter().copied().unzip();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments
         WHERE (order_id, lease) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))
         ORDER BY order_id FOR UPDATE"
    )))
    .bind(order_ids)
    .bind(leases)
    .fetch_all(conn)
    .await
}

/// Gives a claimed row back without having asked the provider (its circuit breaker is
/// open): due again at once, and everything else — an open attempt, its key — as it was.
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id))]
pub async fn hand_back(
    db: impl PgExecutor<'_>,
    order_id: OrderId,
    lease: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET due_at = now(), lease = NULL WHERE order_id = $1 AND lease = $2",
    )
    .bind(order_id)
    .bind(lease)
    .execute(db)
    .await?;
    Ok(())
}

/// Gives up a row the worker has nothing to do with (its state moved on meanwhile).
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id))]
pub async fn release(
    db: impl PgExecutor<'_>,
    order_id: OrderId,
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
