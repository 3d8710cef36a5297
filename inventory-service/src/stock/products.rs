//! The products' stock as the API reads and sets it.

use common::timestamp::Timestamp;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};

/// A product's stock: `available` for new orders, `reserved` by orders.
#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Product {
    pub product_id: String,
    pub available: i32,
    pub reserved: i32,
    pub updated_at: Timestamp,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Product>, sqlx::Error> {
    sqlx::query_as(
        "SELECT product_id, available, reserved, updated_at FROM products ORDER BY product_id",
    )
    .fetch_all(db)
    .await
}

#[tracing::instrument(level = "debug", skip_all, fields(product_id = product_id))]
pub async fn find(
    db: impl PgExecutor<'_>,
    product_id: &str,
) -> Result<Option<Product>, sqlx::Error> {
    sqlx::query_as(
        "SELECT product_id, available, reserved, updated_at FROM products WHERE product_id = $1",
    )
    .bind(product_id)
    .fetch_optional(db)
    .await
}

/// A product's stock, locked until the transaction ends: what a restock replaces.
#[tracing::instrument(level = "debug", skip_all, fields(product_id = product_id))]
pub async fn find_for_update(
    conn: &mut PgConnection,
    product_id: &str,
) -> Result<Option<Product>, sqlx::Error> {
    sqlx::query_as(
        "SELECT product_id, available, reserved, updated_at FROM products
         WHERE product_id = $1 FOR UPDATE",
    )
    .bind(product_id)
    .fetch_optional(conn)
    .await
}

/// Sets the available stock of a product, creating it if needed. Reserved stock is not
/// touched: it belongs to orders.
#[tracing::instrument(level = "debug", skip_all, fields(product_id = product_id, available = available))]
pub async fn set_available(
    db: impl PgExecutor<'_>,
    product_id: &str,
    available: i32,
) -> Result<Product, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO products (product_id, available) VALUES ($1, $2)
         ON CONFLICT (product_id) DO UPDATE SET available = $2, updated_at = now()
         RETURNING product_id, available, reserved, updated_at",
    )
    .bind(product_id)
    .bind(available)
    .fetch_one(db)
    .await
}
