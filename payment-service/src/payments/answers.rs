//! What the provider's answer (or a cancellation between attempts) does to the row, under
//! the row lock the worker holds: processed, declined, unknown, refunded, or failed.

use sqlx::PgConnection;
use std::time::Duration;
use uuid::Uuid;

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
