//! What the provider's answers (or a cancellation between attempts) do to the rows, under
//! the row locks the worker holds: processed, declined, unknown, refunded, or failed. A
//! [`Batch`] gathers the answers of one transaction and writes each kind in one statement.

use sqlx::PgConnection;
use std::time::Duration;
use uuid::Uuid;

/// Ends a payment with no charge in flight: nothing more will be attempted.
pub async fn fail(conn: &mut PgConnection, order_id: Uuid, note: &str) -> Result<(), sqlx::Error> {
    let mut batch = Batch::default();
    batch.failed(order_id, note.to_owned());
    batch.write(conn).await
}

/// The answers of one transaction, by kind.
#[derive(Debug, Default)]
pub struct Batch {
    processed: Vec<(Uuid, String)>,
    failed: Vec<(Uuid, String)>,
    declined: Vec<(Uuid, String, f64)>,
    unknown: Vec<(Uuid, String, f64)>,
    refunded: Vec<(Uuid, String)>,
}

impl Batch {
    /// The open attempt succeeded. A cancelled order's refund is due at once.
    pub fn processed(&mut self, order_id: Uuid, charge_id: &str) {
        self.processed.push((order_id, charge_id.to_owned()));
    }

    /// The payment ends without a charge: nothing more will be attempted.
    pub fn failed(&mut self, order_id: Uuid, note: String) {
        self.failed.push((order_id, note));
    }

    /// The open attempt was declined; the next one is due after `delay`.
    pub fn declined(&mut self, order_id: Uuid, note: String, delay: Duration) {
        self.declined.push((order_id, note, delay.as_secs_f64()));
    }

    /// The outcome of the open attempt (or of the refund) is unknown: ask again, with the
    /// same key, after `delay`.
    pub fn unknown(&mut self, order_id: Uuid, note: String, delay: Duration) {
        self.unknown.push((order_id, note, delay.as_secs_f64()));
    }

    /// The charge was given back.
    pub fn refunded(&mut self, order_id: Uuid, refund_id: &str) {
        self.refunded.push((order_id, refund_id.to_owned()));
    }

    /// One statement per kind present.
    pub async fn write(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if !self.processed.is_empty() {
            let (ids, charges): (Vec<Uuid>, Vec<String>) = self.processed.into_iter().unzip();
            sqlx::query(
                "UPDATE payments p SET status = 'PROCESSED', charge_id = a.charge_id,
                        attempt_open = false, unknown_tries = 0, last_error = NULL, lease = NULL,
                        updated_at = now(),
                        due_at = CASE WHEN p.cancel_requested THEN now() ELSE NULL END
                 FROM unnest($1::uuid[], $2::text[]) AS a(order_id, charge_id)
                 WHERE p.order_id = a.order_id",
            )
            .bind(ids)
            .bind(charges)
            .execute(&mut *conn)
            .await?;
        }
        if !self.failed.is_empty() {
            let (ids, notes): (Vec<Uuid>, Vec<String>) = self.failed.into_iter().unzip();
            sqlx::query(
                "UPDATE payments p SET status = 'FAILED', last_error = a.note, attempt_open = false,
                        due_at = NULL, lease = NULL, updated_at = now()
                 FROM unnest($1::uuid[], $2::text[]) AS a(order_id, note)
                 WHERE p.order_id = a.order_id",
            )
            .bind(ids)
            .bind(notes)
            .execute(&mut *conn)
            .await?;
        }
        if !self.declined.is_empty() {
            let (ids, notes, delays) = split(self.declined);
            sqlx::query(
                "UPDATE payments p SET attempt_open = false, last_error = a.note, lease = NULL,
                        updated_at = now(), due_at = now() + make_interval(secs => a.delay)
                 FROM unnest($1::uuid[], $2::text[], $3::float8[]) AS a(order_id, note, delay)
                 WHERE p.order_id = a.order_id",
            )
            .bind(ids)
            .bind(notes)
            .bind(delays)
            .execute(&mut *conn)
            .await?;
        }
        if !self.unknown.is_empty() {
            let (ids, notes, delays) = split(self.unknown);
            sqlx::query(
                "UPDATE payments p SET unknown_tries = p.unknown_tries + 1, last_error = a.note,
                        lease = NULL, updated_at = now(),
                        due_at = now() + make_interval(secs => a.delay)
                 FROM unnest($1::uuid[], $2::text[], $3::float8[]) AS a(order_id, note, delay)
                 WHERE p.order_id = a.order_id",
            )
            .bind(ids)
            .bind(notes)
            .bind(delays)
            .execute(&mut *conn)
            .await?;
        }
        if !self.refunded.is_empty() {
            let (ids, refunds): (Vec<Uuid>, Vec<String>) = self.refunded.into_iter().unzip();
            sqlx::query(
                "UPDATE payments p SET status = 'REFUNDED', refund_id = a.refund_id,
                        unknown_tries = 0, last_error = 'order cancelled after payment',
                        due_at = NULL, lease = NULL, updated_at = now()
                 FROM unnest($1::uuid[], $2::text[]) AS a(order_id, refund_id)
                 WHERE p.order_id = a.order_id",
            )
            .bind(ids)
            .bind(refunds)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

type Columns = (Vec<Uuid>, Vec<String>, Vec<f64>);

fn split(rows: Vec<(Uuid, String, f64)>) -> Columns {
    let mut columns: Columns = Default::default();
    for (id, note, delay) in rows {
        columns.0.push(id);
        columns.1.push(note);
        columns.2.push(delay);
    }
    columns
}
