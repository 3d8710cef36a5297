//! order-service's operator log (CONTRACT §16): every admin action it performs — replays,
//! discards, edits of dead letters, an operator's cancel of an order — appends one entry
//! to its `operator_log` table (migration `order/0005`), which nothing updates or deletes.
//!
//! An action that changes order-service's own database calls [`append`] on the same
//! transaction, so the action and its entry commit together:
//! `operator_log::append(uow.conn(), &actor, "cancel", &order_id.to_string(), detail, result)`.
//! The [`Actor`] comes from the route's [`common::http::Admin`] extractor (`Admin(actor)`).

pub use common::http::Actor;
pub use common::operator_log::{Entry, append};

/// Names order-service's entries when the log is read together with inventory-service's.
pub const SERVICE: &str = "order";

/// This database's entries: up to `limit` older than `before`, newest first.
pub async fn page(
    db: &sqlx::PgPool,
    limit: i64,
    before: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Vec<Entry>, sqlx::Error> {
    common::operator_log::page(db, limit, before, SERVICE).await
}
