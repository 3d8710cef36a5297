//! A `COMMIT` that got no answer may or may not have happened. The intake ends the
//! backend that ran it, so the answer cannot change any more, and asks the database
//! whether the orders exist: the caller is told what is true, never a guess.

use super::WRITE_TIMEOUT;
use chrono::{DateTime, Utc};
use common::store::Store;
use contract::OrderId;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::time::Duration;
use tokio::time::timeout;

/// The backend a transaction runs on and when the transaction began, to end it when its
/// `COMMIT` is in doubt (the start time tells that transaction from a later one).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub(super) struct Backend {
    pid: i32,
    started: DateTime<Utc>,
}

impl Backend {
    /// The backend `conn` runs on, and when its transaction began.
    pub(super) async fn of(conn: &mut PgConnection) -> Result<Self, sqlx::Error> {
        sqlx::query_as("SELECT pg_backend_pid() AS pid, now() AS started")
            .fetch_one(conn)
            .await
    }
}

/// Whether a failed `COMMIT` may have committed anyway: the server's error answer means
/// it did not; a lost link (or a server going away mid-commit) leaves it open.
pub(super) fn in_doubt(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => true,
    }
}

/// Settles a `COMMIT` in doubt: ends the backend that ran it (a transaction not yet
/// committed then rolls back, so the answer cannot change afterwards), waits until it is
/// gone, and asks whether the orders exist. Tries until the database answers: the caller
/// is held rather than told something that may be false. It asks on a connection of its
/// own, outside the pool: the caller keeps the doubtful connection out of the pool until
/// this returns (so the backend ended is never one a later transaction reuses), and a pool
/// with no other connection free must not keep it waiting.
pub(super) async fn resolve(store: &Store, backend: Backend, ids: Vec<OrderId>) -> bool {
    if ids.is_empty() {
        return true;
    }
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = timeout(WRITE_TIMEOUT, async {
            let mut conn = store.pool().connect_options().connect().await?;
            sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(backend.pid)
                .execute(&mut conn)
                .await?;
            loop {
                let alive: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND xact_start = $2)",
                )
                .bind(backend.pid)
                .bind(backend.started)
                .fetch_one(&mut conn)
                .await?;
                if !alive {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let found: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_one(&mut conn)
                .await?;
            let _ = conn.close().await;
            Ok::<_, sqlx::Error>(found > 0)
        })
        .await;
        match attempt {
            Ok(Ok(committed)) => {
                tracing::info!(committed, orders = ids.len(), "settled a COMMIT in doubt");
                return committed;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, retry_in = ?delay, "cannot settle a COMMIT in doubt yet")
            }
            Err(_) => tracing::warn!(retry_in = ?delay, "cannot settle a COMMIT in doubt yet"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    //! The in-doubt path against a real PostgreSQL (`TEST_POSTGRES_URL`), in a database of
    //! its own: a transaction whose `COMMIT` never arrives is ended and reads as not written;
    //! one that committed reads as written.

    use super::*;
    use sqlx::Connection;
    use tokio_util::sync::CancellationToken;

    async fn scratch_store() -> (Store, String) {
        let server = std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let url = format!("{server}/intake_{}", uuid::Uuid::new_v4().simple());
        let pool = common::db::prepare(
            &url,
            4,
            &crate::startup::MIGRATOR,
            &CancellationToken::new(),
        )
        .await
        .expect("a scratch database");
        (Store::new(pool), url)
    }

    async fn drop_database(store: Store, url: &str) {
        store.pool().close().await;
        let (server, name) = url.rsplit_once('/').unwrap();
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }

    async fn insert_in(conn: &mut sqlx::PgConnection, id: OrderId) -> Backend {
        let backend = Backend::of(&mut *conn).await.unwrap();
        sqlx::query(
            "INSERT INTO orders (id, customer_id, items, total_cents, status, timeline)
             VALUES ($1, 'c', '[]', 100, 'PENDING', '[]')",
        )
        .bind(id)
        .execute(&mut *conn)
        .await
        .unwrap();
        backend
    }

    #[tokio::test]
    async fn a_commit_in_doubt_is_settled_by_what_the_database_holds() {
        let (store, url) = scratch_store().await;

        // Never committed: the transaction is still open when it is settled.
        let mut open = store.pool().acquire().await.unwrap().detach();
        sqlx::query("BEGIN").execute(&mut open).await.unwrap();
        let stuck = OrderId::new();
        let backend = insert_in(&mut open, stuck).await;
        assert!(!resolve(&store, backend, vec![stuck]).await);
        // Its backend is gone: a late COMMIT cannot write it any more.
        assert!(sqlx::query("COMMIT").execute(&mut open).await.is_err());
        let found: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE id = $1")
            .bind(stuck)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(found, 0);

        // Committed, but its answer was lost.
        let mut conn = store.pool().acquire().await.unwrap().detach();
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        let written = OrderId::new();
        let backend = insert_in(&mut conn, written).await;
        sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
        assert!(resolve(&store, backend, vec![written]).await);

        drop_database(store, &url).await;
    }
}
