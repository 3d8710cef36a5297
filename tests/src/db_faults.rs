//! Faults a test puts into a service's own database: a handler that fails every time
//! (inserts refused by a trigger), and writes held mid-statement until the test lets them
//! go (a trigger waiting for the test's advisory lock).

use crate::{Service, TestStack};

impl TestStack {
    /// Makes every insert into `table` of `service`'s database fail, so its handler fails
    /// every time (retried, then dead-lettered), until [`TestStack::accept_inserts`].
    pub async fn refuse_inserts(&self, service: Service, table: &str) {
        let db = self.db(service).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse();"
        )))
        .execute(&db)
        .await
        .expect("the refusing trigger can be created");
    }

    /// Lets inserts into `table` through again.
    pub async fn accept_inserts(&self, service: Service, table: &str) {
        let db = self.db(service).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP TRIGGER refuse ON {table}"
        )))
        .execute(&db)
        .await
        .expect("the refusing trigger can be dropped");
    }
}

/// Writes to a table of a service's database held mid-statement until the test lets them
/// go: a trigger makes each wait for an advisory lock the test holds. The writer's
/// transaction stays open with its row locks, so the test can strike a service that is
/// provably in the middle of this write (see [`TestStack::hold_writes`]).
pub struct HeldWrites {
    /// The test's own session, which holds the advisory lock.
    lock: sqlx::PgConnection,
    pool: sqlx::PgPool,
    key: i64,
    table: String,
}

impl TestStack {
    /// Makes every `operation` (`INSERT` or `UPDATE`) on `table` of `service`'s database
    /// whose new row meets `when` (SQL over `NEW`, e.g. `NEW.status = 'PROCESSED'`) wait
    /// inside its statement until [`HeldWrites::release`].
    pub async fn hold_writes(
        &self,
        service: Service,
        table: &str,
        operation: &str,
        when: &str,
    ) -> HeldWrites {
        use sqlx::Connection;
        let key = i64::from(rand_key());
        let mut lock = sqlx::PgConnection::connect(&self.database_url(service))
            .await
            .expect("the service database is reachable");
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut lock)
            .await
            .expect("the advisory lock is free");
        let pool = self.db(service).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE FUNCTION hold_{key}() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN PERFORM pg_advisory_xact_lock({key}); RETURN NEW; END $$;
             CREATE TRIGGER hold_{key} BEFORE {operation} ON {table} FOR EACH ROW
                 WHEN ({when}) EXECUTE FUNCTION hold_{key}();"
        )))
        .execute(&pool)
        .await
        .expect("the holding trigger can be created");
        HeldWrites {
            lock,
            pool,
            key,
            table: table.to_owned(),
        }
    }
}

/// A key for one hold's advisory lock (positive, so `pg_locks.objid` shows it as is).
fn rand_key() -> i32 {
    (uuid::Uuid::new_v4().as_u128() % i32::MAX as u128) as i32
}

impl HeldWrites {
    /// The server processes whose statement waits in the hold now.
    pub async fn waiting(&self) -> Vec<i32> {
        sqlx::query_scalar(
            "SELECT pid FROM pg_locks
             WHERE locktype = 'advisory' AND NOT granted AND objid::bigint = $1
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .bind(self.key)
        .fetch_all(&self.pool)
        .await
        .expect("pg_locks can be read")
    }

    /// Waits until `count` statements wait in the hold.
    pub async fn await_waiting(&self, count: usize) {
        crate::eventually(
            &format!("{count} writes to {} held", self.table),
            std::time::Duration::from_secs(60),
            || async {
                match self.waiting().await.len() {
                    found if found == count => Ok(()),
                    found => Err(format!("{found} held")),
                }
            },
        )
        .await;
    }

    /// Ends every held statement with an error — its session is terminated, as when a
    /// connection breaks mid-statement — so the write never happens; returns how many.
    pub async fn fail_waiting(&self) -> usize {
        let waiting = self.waiting().await;
        for pid in &waiting {
            sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .execute(&self.pool)
                .await
                .expect("a held session can be terminated");
        }
        waiting.len()
    }

    /// Lets the held writes (and later ones) through, and removes the hold.
    pub async fn release(mut self) {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(self.key)
            .execute(&mut self.lock)
            .await
            .expect("the advisory lock can be released");
        let key = self.key;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP TRIGGER hold_{key} ON {}; DROP FUNCTION hold_{key}();",
            self.table
        )))
        .execute(&self.pool)
        .await
        .expect("the holding trigger can be dropped");
    }
}
