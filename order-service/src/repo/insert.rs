//! Writing new orders, many in one statement, and finding them again by the idempotency
//! keys their customers sent.

use super::{COLUMNS, OrderRow, TimelineEntry};
use crate::domain::NewOrder;
use contract::OrderId;
use contract::events::LineItem;
use sqlx::PgConnection;
use sqlx::types::Json;

/// A new order about to be written: its id and the `OrderCreated` it will publish are
/// chosen beforehand, so its first timeline entry goes into the same insert.
pub struct Insertion<'a> {
    pub id: OrderId,
    pub order: &'a NewOrder,
    pub idempotency_key: Option<&'a str>,
    pub created: TimelineEntry,
}

impl Insertion<'_> {
    /// Its customer's idempotency key, if it came with one.
    pub fn customer_key(&self) -> Option<CustomerKey<'_>> {
        Some(CustomerKey {
            customer_id: self.order.customer_id().as_str(),
            key: self.idempotency_key?,
        })
    }
}

/// Inserts `PENDING` orders in one statement and returns those written. An order whose
/// idempotency key its customer already used (or uses twice in the list) is skipped; a
/// concurrent insert with the same customer and key waits for the first to commit.
#[tracing::instrument(level = "debug", skip_all, fields(orders = orders.len()))]
pub async fn insert_all(
    conn: &mut PgConnection,
    orders: &[Insertion<'_>],
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let ids: Vec<OrderId> = orders.iter().map(|o| o.id).collect();
    let customers: Vec<&str> = orders
        .iter()
        .map(|o| o.order.customer_id().as_str())
        .collect();
    let items: Vec<Json<&[LineItem]>> = orders.iter().map(|o| Json(o.order.items())).collect();
    let totals: Vec<i64> = orders.iter().map(|o| o.order.total().cents()).collect();
    let keys: Vec<Option<&str>> = orders.iter().map(|o| o.idempotency_key).collect();
    let timelines: Vec<Json<[&TimelineEntry; 1]>> =
        orders.iter().map(|o| Json([&o.created])).collect();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO orders (id, customer_id, items, total_cents, status, idempotency_key, timeline)
         SELECT id, customer, item, total, 'PENDING', key, line
         FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::bigint[], $5::text[], $6::jsonb[])
              AS new(id, customer, item, total, key, line)
         ON CONFLICT (customer_id, idempotency_key) DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(&ids)
    .bind(&customers)
    .bind(&items)
    .bind(&totals)
    .bind(&keys)
    .bind(&timelines)
    .fetch_all(conn)
    .await
}

/// A customer's idempotency key: keys are scoped per customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerKey<'a> {
    pub customer_id: &'a str,
    pub key: &'a str,
}

/// The orders created with these customers' keys.
#[tracing::instrument(level = "debug", skip_all, fields(keys = keys.len()))]
pub async fn find_by_idempotency_keys(
    conn: &mut PgConnection,
    keys: &[CustomerKey<'_>],
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let customers: Vec<&str> = keys.iter().map(|k| k.customer_id).collect();
    let idempotency_keys: Vec<&str> = keys.iter().map(|k| k.key).collect();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders
         WHERE (customer_id, idempotency_key) IN
               (SELECT * FROM unnest($1::text[], $2::text[]))"
    )))
    .bind(&customers)
    .bind(&idempotency_keys)
    .fetch_all(conn)
    .await
}
