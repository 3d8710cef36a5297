//! Reading an order's reservation, with whose order it is and the `InventoryReserved` that
//! announced it.

use super::ReservationStatus;
use common::text_enum::TextEnum;
use common::timestamp::Timestamp;
use contract::OrderId;
use contract::reads::{ReservationView, ReservedEvent};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

/// The `reservations` row as read.
#[derive(FromRow)]
struct ReservationRow {
    customer_id: Option<String>,
    status: ReservationStatus,
    reserved_event_id: Option<Uuid>,
    reserved_cause: Option<Uuid>,
    reserved_at: Option<Timestamp>,
}

/// An order's reservation, and whose order it is.
#[derive(Debug, Clone)]
pub struct OwnedReservation {
    /// The order's customer; `None` for reservations older than the record of it.
    pub customer_id: Option<String>,
    pub view: ReservationView,
}

/// An order's reservation and the `InventoryReserved` it was announced with (none when
/// nothing was reserved, or for reservations older than the record).
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id))]
pub async fn reservation(
    db: impl PgExecutor<'_>,
    order_id: OrderId,
) -> Result<Option<OwnedReservation>, sqlx::Error> {
    let row: Option<ReservationRow> = sqlx::query_as(
        "SELECT customer_id, status, reserved_event_id, reserved_cause, reserved_at
         FROM reservations WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| OwnedReservation {
        view: ReservationView {
            order_id,
            status: row.status.as_str().to_owned(),
            reserved: row
                .reserved_event_id
                .zip(row.reserved_at)
                .map(|(event_id, occurred_at)| ReservedEvent {
                    event_id,
                    causation_id: row.reserved_cause,
                    occurred_at,
                }),
        },
        customer_id: row.customer_id,
    }))
}
