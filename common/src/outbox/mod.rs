//! The transactional outbox: events are written to the `outbox` table in the transaction
//! that causes them, sent by the committing task right after the commit, and sent again by
//! the relay if that did not work out.
//!
//! - [`write`](self::write): the events a unit of work recorded, in one insert before its
//!   commit (`UnitOfWork::commit` calls it).
//! - [`direct`](self::direct): publishes committed rows at once and hands the confirmed
//!   ones to the relay for deletion.
//! - [`row`](self::row): an outbox row, and its AMQP properties.
//! - [`relay`](self::relay): deletes confirmed rows in bulk; publishes rows left behind (a
//!   failed publish, a crash, another replica's crash) with confirms, then deletes them.
//! - [`health`](self::health): what the publishers report to `/ready`.

mod direct;
mod health;
mod relay;
mod row;
pub(crate) mod write;

pub(crate) use direct::Publisher;
pub use health::RelayHealth;
pub(crate) use relay::Relay;

use direct::Handoff;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::Notify;

/// What connects the writers of one service's outbox to its relay.
#[derive(Clone, Debug, Default)]
pub(crate) struct Signals {
    /// Rung when rows need the relay now: a publish after commit failed, or there was none
    /// (no broker link, or a store without a publisher).
    pub(crate) bell: Arc<Notify>,
    /// Whether events are getting out (for `/ready`).
    pub(crate) health: Arc<RelayHealth>,
    /// Confirmed events, for the relay to delete.
    pub(crate) handoff: Arc<Handoff>,
}

/// Takes a lock shared with tasks that may have panicked holding it: what it guards (ids,
/// a time, health flags) stays consistent at every step, so a poisoned lock is still fine.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts events RabbitMQ confirmed, by type (`messages_published_total`).
fn count_published<'a>(event_types: impl IntoIterator<Item = &'a String>) {
    for event_type in event_types {
        metrics::counter!("messages_published_total", "event_type" => event_type.clone())
            .increment(1);
    }
}

/// How many events wait in the outbox (for `/metrics` and the tests).
pub(crate) async fn backlog(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
}
