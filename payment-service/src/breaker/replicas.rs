//! Every process's breaker, in the payment database: one row per process, written on each
//! change and refreshed every [`HEARTBEAT`], deleted when the process stops cleanly. A row
//! not refreshed for [`STALE_AFTER`] belongs to a process that died and is ignored (and
//! removed when a process starts). So any replica can answer `GET /breaker` for all of
//! them — one replica's `/ready` behind a load balancer shows that replica only.

use super::{Breaker, Snapshot, State};
use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often a process refreshes its row.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A row older than this is a process that is gone.
pub const STALE_AFTER: Duration = Duration::from_secs(10);
/// Rows of processes gone this long are deleted when a process starts.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// One live process's breaker.
#[derive(Debug, Clone, FromRow)]
pub struct ReplicaRow {
    pub replica_id: Uuid,
    pub pid: i32,
    pub state: State,
    pub since: DateTime<Utc>,
    pub failure: Option<String>,
    pub seen_at: DateTime<Utc>,
}

/// Keeps this process's row up to date until `stop`, then deletes it.
pub async fn keep_reporting(
    pool: PgPool,
    breaker: Arc<Breaker>,
    replica_id: Uuid,
    stop: CancellationToken,
) {
    if let Err(error) = forget_gone(&pool).await {
        tracing::debug!(%error, "cannot remove the breaker rows of processes long gone");
    }
    let mut changes = breaker.watch();
    loop {
        let snapshot = changes.borrow_and_update().clone();
        if let Err(error) = write(&pool, replica_id, &snapshot).await {
            tracing::warn!(%error, "cannot record this replica's breaker state; trying again");
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(HEARTBEAT) => {}
            _ = stop.cancelled() => break,
        }
    }
    if let Err(error) = sqlx::query("DELETE FROM provider_breakers WHERE replica_id = $1")
        .bind(replica_id)
        .execute(&pool)
        .await
    {
        tracing::debug!(%error, "cannot remove this replica's breaker row; it goes stale");
    }
}

async fn write(db: impl PgExecutor<'_>, replica_id: Uuid, now: &Snapshot) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO provider_breakers (replica_id, pid, state, since, failure, seen_at)
         VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (replica_id) DO UPDATE SET state = $3, since = $4, failure = $5,
             seen_at = now()",
    )
    .bind(replica_id)
    .bind(std::process::id() as i32)
    .bind(now.state)
    .bind(now.since)
    .bind(&now.failure)
    .execute(db)
    .await?;
    Ok(())
}

async fn forget_gone(db: impl PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM provider_breakers WHERE seen_at < now() - make_interval(secs => $1)")
        .bind(FORGET_AFTER.as_secs_f64())
        .execute(db)
        .await?;
    Ok(())
}

/// The breakers of the processes that are alive.
pub async fn live(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<ReplicaRow>> {
    sqlx::query_as(
        "SELECT replica_id, pid, state, since, failure, seen_at FROM provider_breakers
         WHERE seen_at > now() - make_interval(secs => $1) ORDER BY since, replica_id",
    )
    .bind(STALE_AFTER.as_secs_f64())
    .fetch_all(db)
    .await
}
