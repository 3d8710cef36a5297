//! The scratch databases: one schema per service in the calibration database, each migrated
//! with its service's own migrations — so it has the tables (columns, keys, indexes) the
//! service has, and every insert and update costs what it costs there. Dropped at the end
//! of the run.
//!
//! Each service's pool sets `search_path` to its schema at connect time, so the hops'
//! statements name the tables as the services do.

use contract::Service;
use sqlx::Connection;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::PgConnection;

/// The product every order takes one unit of, as bench/outside.py's orders do, so every
/// reservation updates the same stock row, as there.
pub const PRODUCT: &str = "product-A";

/// Its stock: more than any run takes.
const STOCK: i64 = 1_000_000_000;

/// Each service's own migrations, embedded as the service embeds them (its
/// `startup::MIGRATOR`), from the same folders: the scratch tables are never restated here.
static ORDER: Migrator = sqlx::migrate!("../migrations/order");
static INVENTORY: Migrator = sqlx::migrate!("../migrations/inventory");
static PAYMENT: Migrator = sqlx::migrate!("../migrations/payment");
static NOTIFICATION: Migrator = sqlx::migrate!("../migrations/notification");

/// One of the four service databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Database {
    Order,
    Inventory,
    Payment,
    Notification,
}

impl Database {
    pub const ALL: [Self; 4] = [
        Self::Order,
        Self::Inventory,
        Self::Payment,
        Self::Notification,
    ];

    pub fn short_name(self) -> &'static str {
        self.service().short_name()
    }

    /// The service this database stands for.
    pub fn service(self) -> Service {
        match self {
            Self::Order => Service::Order,
            Self::Inventory => Service::Inventory,
            Self::Payment => Service::Payment,
            Self::Notification => Service::Notification,
        }
    }

    /// The migrations of the service's own tables.
    fn migrator(self) -> &'static Migrator {
        match self {
            Self::Order => &ORDER,
            Self::Inventory => &INVENTORY,
            Self::Payment => &PAYMENT,
            Self::Notification => &NOTIFICATION,
        }
    }

    /// The schema standing for this service's database in run `run`.
    pub fn schema(self, run: &str) -> String {
        format!("{run}_{}", self.short_name())
    }
}

/// Creates the four schemas of run `run`, each migrated as its service's database is at
/// start (the shared messaging tables, then the service's own), and fills the stock.
pub async fn create(url: &str, run: &str) -> Result<(), String> {
    let mut conn = PgConnection::connect(url)
        .await
        .map_err(|e| format!("PostgreSQL at {url}: {e}"))?;
    for database in Database::ALL {
        let schema = database.schema(run);
        migrate(&mut conn, &schema, database.migrator())
            .await
            .map_err(|e| format!("creating the scratch schema {schema}: {e}"))?;
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {}.products (product_id, available) VALUES ('{PRODUCT}', {STOCK})
         ON CONFLICT (product_id) DO UPDATE SET available = EXCLUDED.available",
        Database::Inventory.schema(run)
    )))
    .execute(&mut conn)
    .await
    .map_err(|e| format!("filling the scratch stock: {e}"))?;
    let _ = conn.close().await;
    Ok(())
}

/// Creates `schema` and runs the migrations in it: the migrators name their tables
/// unqualified, so they land in the first schema of the search path.
async fn migrate(
    conn: &mut PgConnection,
    schema: &str,
    migrator: &Migrator,
) -> Result<(), MigrateError> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA {schema}; SET search_path TO {schema}"
    )))
    .execute(&mut *conn)
    .await?;
    common::db::messaging_migrator().run(&mut *conn).await?;
    migrator.run(&mut *conn).await?;
    sqlx::raw_sql("RESET search_path")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Drops the schemas of run `run`, whatever exists of them.
pub async fn drop(url: &str, run: &str) -> Result<(), String> {
    let mut conn = PgConnection::connect(url)
        .await
        .map_err(|e| format!("PostgreSQL at {url}: {e}"))?;
    for database in Database::ALL {
        let schema = database.schema(run);
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("dropping the scratch schema {schema}: {e}"))?;
    }
    let _ = conn.close().await;
    Ok(())
}
