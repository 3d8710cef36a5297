//! Reserving and releasing stock. Every transaction that changes products locks them in
//! one fixed order (by `product_id`) before it reads them — all products of a whole batch
//! at once, see [`lock_products_in_order`] — so concurrent orders, batches and replicas
//! never deadlock and never sell what is not there: the check and the update see the same,
//! locked, rows.
//!
//! Reading an order's reservation is in `reservations`; reading products and setting their
//! stock (the API's) in `products`.

mod products;
mod reservations;

pub use products::{Product, find, find_for_update, list, set_available};
pub use reservations::{OwnedReservation, reservation};

use common::text_enum::TextEnum;
use contract::OrderId;
use contract::events::{LineItem, UnavailableItem};
use contract::reads::ReservedEvent;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use std::collections::BTreeMap;

/// How much of one product an order needs in all (its lines summed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Need {
    pub product_id: String,
    pub quantity: i32,
}

/// Sums an order's lines per product, sorted by product id: the lock order.
pub fn needs(items: &[LineItem]) -> Vec<Need> {
    let mut totals: BTreeMap<&str, i32> = BTreeMap::new();
    for item in items {
        *totals.entry(&item.product_id).or_default() += item.quantity.get() as i32;
    }
    totals
        .into_iter()
        .map(|(product_id, quantity)| Need {
            product_id: product_id.to_owned(),
            quantity,
        })
        .collect()
}

/// Where an order's reservation stands (the `reservations.status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    /// The order's items are held.
    Reserved,
    /// Some item was short; nothing was held.
    Unavailable,
    /// Held, then given back when the order was cancelled.
    Released,
    /// The cancellation came before any reservation: a tombstone.
    Cancelled,
}

impl TextEnum for ReservationStatus {
    const ALL: &'static [Self] = &[
        Self::Reserved,
        Self::Unavailable,
        Self::Released,
        Self::Cancelled,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Released => "RELEASED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

common::text_enum_sqlx!(ReservationStatus);

/// What reserving found.
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// Every product had enough; all are now reserved.
    Reserved,
    /// These products were short; nothing was reserved.
    Unavailable(Vec<UnavailableItem>),
    /// This order was seen before (a repeat, or its cancellation came first).
    AlreadySeen { status: ReservationStatus },
}

/// The order a reservation is for: its id and its customer (who may read the reservation).
#[derive(Debug, Clone, Copy)]
pub struct OrderRef<'a> {
    pub order_id: OrderId,
    pub customer_id: &'a str,
}

/// Reserves every need of the order, or none; a reservation made records the
/// `InventoryReserved` that will announce it (chosen beforehand, so the statement that
/// claims the order records it too).
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %order.order_id, products = needs.len()))]
pub async fn reserve(
    conn: &mut PgConnection,
    order: OrderRef<'_>,
    needs: &[Need],
    announced: &ReservedEvent,
) -> Result<Reservation, sqlx::Error> {
    let order_id = order.order_id;
    // Claim the order first: a repeat or an earlier cancellation stops us here.
    let claimed = sqlx::query(
        "INSERT INTO reservations
             (order_id, status, items, reserved_event_id, reserved_cause, reserved_at, customer_id)
         VALUES ($1, 'RESERVED', $2, $3, $4, $5, $6)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(Json(needs))
    .bind(announced.event_id)
    .bind(announced.causation_id)
    .bind(announced.occurred_at)
    .bind(order.customer_id)
    .execute(&mut *conn)
    .await?;
    if claimed.rows_affected() == 0 {
        let status: ReservationStatus =
            sqlx::query_scalar("SELECT status FROM reservations WHERE order_id = $1")
                .bind(order_id)
                .fetch_one(&mut *conn)
                .await?;
        return Ok(Reservation::AlreadySeen { status });
    }

    let available = lock_products(conn, needs).await?;
    let short: Vec<UnavailableItem> = needs
        .iter()
        .filter_map(|need| {
            let have = available.get(&need.product_id).copied().unwrap_or(0);
            (have < need.quantity).then(|| UnavailableItem {
                product_id: need.product_id.clone(),
                requested: need.quantity as u32,
                available: have.max(0) as u32,
            })
        })
        .collect();
    if !short.is_empty() {
        sqlx::query(
            "UPDATE reservations SET status = 'UNAVAILABLE', items = '[]', updated_at = now(),
                 reserved_event_id = NULL, reserved_cause = NULL, reserved_at = NULL
             WHERE order_id = $1",
        )
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
        return Ok(Reservation::Unavailable(short));
    }
    move_stock(conn, needs, -1).await?;
    Ok(Reservation::Reserved)
}

/// What releasing found.
#[derive(Debug, Clone, PartialEq)]
pub enum Release {
    /// The order held these; they are available again.
    Released(Vec<Need>),
    /// Nothing was held yet: a tombstone now stops a late reservation.
    CancelledFirst,
    /// Nothing to give back (already released, or never reserved).
    NothingHeld,
}

/// Releases what the order holds, once.
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %order.order_id))]
pub async fn release(conn: &mut PgConnection, order: OrderRef<'_>) -> Result<Release, sqlx::Error> {
    let row: Option<(ReservationStatus, Json<Vec<Need>>)> = sqlx::query_as(
        "INSERT INTO reservations (order_id, status, customer_id) VALUES ($1, 'CANCELLED', $2)
         ON CONFLICT (order_id) DO UPDATE SET status = 'RELEASED', updated_at = now()
             WHERE reservations.status = 'RESERVED'
         RETURNING status, items",
    )
    .bind(order.order_id)
    .bind(order.customer_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some((ReservationStatus::Released, Json(needs))) => {
            lock_products(conn, &needs).await?;
            move_stock(conn, &needs, 1).await?;
            Ok(Release::Released(needs))
        }
        Some(_) => Ok(Release::CancelledFirst),
        None => Ok(Release::NothingHeld),
    }
}

/// Locks the products of `needs` in product-id order; returns what is available of each
/// (unknown products are absent).
async fn lock_products(
    conn: &mut PgConnection,
    needs: &[Need],
) -> Result<BTreeMap<String, i32>, sqlx::Error> {
    let ids: Vec<&str> = needs.iter().map(|need| need.product_id.as_str()).collect();
    let rows: Vec<(String, i32)> = sqlx::query_as(
        "SELECT product_id, available FROM products WHERE product_id = ANY($1)
         ORDER BY product_id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Locks these products (any order, repeats allowed) in product-id order, so that
/// transactions touching several products never wait on each other in a cycle.
#[tracing::instrument(level = "debug", skip_all, fields(products = products.len()))]
pub async fn lock_products_in_order(
    conn: &mut PgConnection,
    products: &[&str],
) -> Result<(), sqlx::Error> {
    if products.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT 1 FROM products WHERE product_id = ANY($1) ORDER BY product_id FOR UPDATE")
        .bind(products)
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves quantities between `available` and `reserved`: `direction` -1 reserves, +1 releases.
async fn move_stock(
    conn: &mut PgConnection,
    needs: &[Need],
    direction: i32,
) -> Result<(), sqlx::Error> {
    let ids: Vec<&str> = needs.iter().map(|need| need.product_id.as_str()).collect();
    let quantities: Vec<i32> = needs.iter().map(|need| need.quantity * direction).collect();
    sqlx::query(
        "UPDATE products p
         SET available = p.available + n.delta, reserved = p.reserved - n.delta, updated_at = now()
         FROM unnest($1::text[], $2::int[]) AS n(product_id, delta)
         WHERE p.product_id = n.product_id",
    )
    .bind(&ids)
    .bind(&quantities)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::quantity::Quantity;

    fn line(product: &str, quantity: i64) -> LineItem {
        LineItem {
            product_id: product.into(),
            quantity: Quantity::try_from(quantity).unwrap(),
        }
    }

    #[test]
    fn needs_sum_repeated_products_in_lock_order() {
        let needs = needs(&[
            line("product-B", 1),
            line("product-A", 2),
            line("product-B", 3),
        ]);
        assert_eq!(
            needs,
            vec![
                Need {
                    product_id: "product-A".into(),
                    quantity: 2
                },
                Need {
                    product_id: "product-B".into(),
                    quantity: 4
                },
            ]
        );
    }
}
