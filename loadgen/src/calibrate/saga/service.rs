//! One of the four services, reduced to what its hops use: a pool on its database (a
//! scratch schema, sized and configured as common's), an AMQP connection of its own (its
//! consumers' channels and its publisher's), and its publisher and outbox cleaner.

use super::broker::Publisher;
use super::failure::Failure;
use super::outbox::Cleaner;
use super::schema::Database;
use lapin::{Connection, ConnectionProperties};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use tokio::task::JoinSet;

/// Connections per service pool: the services' default `DATABASE_POOL_SIZE`.
const POOL_SIZE: u32 = 10;

pub struct Service {
    pub pool: PgPool,
    pub connection: Connection,
    pub publisher: Publisher,
}

impl Service {
    pub async fn start(
        database: Database,
        run: &str,
        database_url: &str,
        amqp_url: &str,
        exchange: &str,
        failure: &Failure,
        tasks: &mut JoinSet<()>,
    ) -> Result<Self, String> {
        let schema = database.schema(run);
        let options = PgConnectOptions::from_str(database_url)
            .map_err(|e| format!("--calibrate-database-url: {e}"))?
            .application_name("loadgen-calibration")
            .options([("search_path", schema.as_str())]);
        // As common's pool: no ping before each lend (a connection in steady use works).
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| format!("PostgreSQL at {database_url}: {e}"))?;
        let connection = Connection::connect(amqp_url, ConnectionProperties::default())
            .await
            .map_err(|e| format!("RabbitMQ at {amqp_url}: {e}"))?;
        let cleaner = Cleaner::start(pool.clone(), failure, tasks);
        let publisher = Publisher::start(&connection, exchange.to_owned(), cleaner, failure, tasks)
            .await
            .map_err(|e| format!("opening the {} publisher: {e}", database.short_name()))?;
        Ok(Self {
            pool,
            connection,
            publisher,
        })
    }

    pub async fn close(&self) {
        let _ = self.connection.close(200, "calibrated".into()).await;
        self.pool.close().await;
    }
}
