//! The transactional outbox: events are written to the `outbox` table in the transaction
//! that causes them, and a relay publishes them with publisher confirms once committed.
//!
//! - [`write`](self::write): the events a unit of work recorded, in one insert before its
//!   commit (`UnitOfWork::commit` calls it).
//! - [`row`](self::row): an outbox row as the relay reads it, and its AMQP properties.
//! - [`relay`](self::relay): publishes committed rows and deletes them once confirmed.
//! - [`health`](self::health): what the relay reports to `/ready`.

mod health;
mod relay;
mod row;
pub(crate) mod write;

pub use health::RelayHealth;
pub(crate) use relay::Relay;

use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::Notify;

/// What connects the writers of one service's outbox to its relay.
#[derive(Clone, Debug, Default)]
pub(crate) struct Signals {
    /// Rung after every commit that recorded events, so the relay publishes them at once.
    pub(crate) bell: Arc<Notify>,
    /// Whether the relay is getting events out (for `/ready`).
    pub(crate) health: Arc<RelayHealth>,
}

/// How many events wait in the outbox (for `/metrics` and the tests).
pub(crate) async fn backlog(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
}
