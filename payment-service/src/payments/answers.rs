//! What the provider's answers (or a cancellation between attempts) do to the rows, under
//! the row locks the worker holds: processed, declined, unknown, refunded, or failed. A
//! [`Batch`] gathers the answers of one transaction and writes each kind in one statement.

use contract::OrderId;
use sqlx::{AssertSqlSafe, PgConnection};
use std::time::Duration;

/// Ends a payment with no charge in flight: nothing more will be attempted.
pub async fn fail(
    conn: &mut PgConnection,
    order_id: OrderId,
    note: &str,
) -> Result<(), sqlx::Error> {
    let mut batch = Batch::default();
    batch.failed(order_id, note.to_owned());
    batch.write(conn).await
}

/// The answers of one transaction, by kind.
#[derive(Debug, Default)]
pub struct Batch {
    processed: Vec<(OrderId, String)>,
    failed: Vec<(OrderId, String)>,
    declined: Vec<(OrderId, String, f64)>,
    unknown: Vec<(OrderId, String, f64)>,
    refunded: Vec<(OrderId, String)>,
}

impl Batch {
    /// The open attempt succeeded. A cancelled order's refund is due at once.
    pub fn processed(&mut self, order_id: OrderId, charge_id: &str) {
        self.processed.push((order_id, charge_id.to_owned()));
    }

    /// The payment ends without a charge: nothing more will be attempted.
    pub fn failed(&mut self, order_id: OrderId, note: String) {
        self.failed.push((order_id, note));
    }

    /// The open attempt was declined; the next one is due after `delay`.
    pub fn declined(&mut self, order_id: OrderId, note: String, delay: Duration) {
        self.declined.push((order_id, note, delay.as_secs_f64()));
    }

    /// The outcome of the open attempt (or of the refund) is unknown: ask again, with the
    /// same key, after `delay`.
    pub fn unknown(&mut self, order_id: OrderId, note: String, delay: Duration) {
        self.unknown.push((order_id, note, delay.as_secs_f64()));
    }

    /// The charge was given back.
    pub fn refunded(&mut self, order_id: OrderId, refund_id: &str) {
        self.refunded.push((order_id, refund_id.to_owned()));
    }

    /// One statement per kind present, in this order.
    pub async fn write(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let processed = "status = 'PROCESSED', charge_id = a.charge_id, attempt_open = false,
            unknown_tries = 0, last_error = NULL, lease = NULL, updated_at = now(),
            due_at = CASE WHEN p.cancel_requested THEN now() ELSE NULL END";
        set_each(conn, processed, "charge_id", self.processed).await?;
        let failed = "status = 'FAILED', last_error = a.note, attempt_open = false,
            due_at = NULL, lease = NULL, updated_at = now()";
        set_each(conn, failed, "note", self.failed).await?;
        let declined = "attempt_open = false, last_error = a.note, lease = NULL,
            updated_at = now(), due_at = now() + make_interval(secs => a.delay)";
        set_each_later(conn, declined, self.declined).await?;
        let unknown = "unknown_tries = p.unknown_tries + 1, last_error = a.note, lease = NULL,
            updated_at = now(), due_at = now() + make_interval(secs => a.delay)";
        set_each_later(conn, unknown, self.unknown).await?;
        let refunded = "status = 'REFUNDED', refund_id = a.refund_id, unknown_tries = 0,
            last_error = 'order cancelled after payment', due_at = NULL, lease = NULL,
            updated_at = now()";
        set_each(conn, refunded, "refund_id", self.refunded).await
    }
}

/// One kind of answer in one statement: `set` on the payment of each row, whose text it
/// reads as `a.<column>`. Nothing when there are none.
async fn set_each(
    conn: &mut PgConnection,
    set: &str,
    column: &str,
    rows: Vec<(OrderId, String)>,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let (ids, texts): (Vec<OrderId>, Vec<String>) = rows.into_iter().unzip();
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE payments p SET {set}
         FROM unnest($1::uuid[], $2::text[]) AS a(order_id, {column})
         WHERE p.order_id = a.order_id"
    )))
    .bind(ids)
    .bind(texts)
    .execute(conn)
    .await?;
    Ok(())
}

/// As [`set_each`], for answers that make the payment due again: each row's note as
/// `a.note` and its delay in seconds as `a.delay`.
async fn set_each_later(
    conn: &mut PgConnection,
    set: &str,
    rows: Vec<(OrderId, String, f64)>,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let (ids, notes, delays) = split(rows);
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE payments p SET {set}
         FROM unnest($1::uuid[], $2::text[], $3::float8[]) AS a(order_id, note, delay)
         WHERE p.order_id = a.order_id"
    )))
    .bind(ids)
    .bind(notes)
    .bind(delays)
    .execute(conn)
    .await?;
    Ok(())
}

type Columns = (Vec<OrderId>, Vec<String>, Vec<f64>);

fn split(rows: Vec<(OrderId, String, f64)>) -> Columns {
    let mut columns: Columns = Default::default();
    for (id, note, delay) in rows {
        columns.0.push(id);
        columns.1.push(note);
        columns.2.push(delay);
    }
    columns
}
