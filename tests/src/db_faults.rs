//! Faults a test puts into a service's own database: a handler that fails every time.

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
