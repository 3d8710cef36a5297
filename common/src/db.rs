//! Each service owns one PostgreSQL database: created when missing, migrated at start.
//!
//! Two migration histories live in it: the shared messaging tables (outbox, inbox) from
//! `migrations/messaging`, tracked in `_sqlx_migrations_messaging`, and the service's own
//! tables from `migrations/<service>`, tracked in the usual `_sqlx_migrations`.
//!
//! TLS is sqlx's, set in `DATABASE_URL` as libpq does (`sslmode=verify-full&sslrootcert=…`,
//! `sslcert`/`sslkey` for a client certificate); the files are checked with the rest of the
//! configuration ([`check_url`]). A failed TLS handshake is not an outage: the service stops
//! at start with [`DbSetupError::Tls`] instead of waiting for a server that will not change.

use crate::retry::Backoff;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a database could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    /// Not a PostgreSQL URL; the parser's error is kept as the source.
    #[error("bad DATABASE_URL: {0}")]
    Url(#[source] sqlx::Error),
    #[error("bad DATABASE_URL: {NO_DATABASE}")]
    NoDatabase,
    /// The server answered, but not with a TLS connection this service can trust.
    #[error("DATABASE_URL: the TLS connection to {server} failed: {meaning}")]
    Tls { server: String, meaning: String },
    #[error("could not create database {name}: {source}")]
    Create { name: String, source: sqlx::Error },
    #[error("migrations failed: {0}")]
    Migrate(#[from] MigrateError),
    #[error("stopped before the database was reachable")]
    Stopped,
}

/// Checks a `DATABASE_URL` as start-up would use it, without connecting: it parses, names
/// a database, and the certificate and key files its TLS parameters name can be read.
/// Returns the database name.
pub fn check_url(url: &str) -> Result<String, String> {
    let name = database_name(url)?;
    let parsed = url::Url::parse(url).map_err(|error| error.to_string())?;
    for (param, value) in parsed.query_pairs() {
        match param.as_ref() {
            "sslrootcert" | "ssl-root-cert" | "ssl-ca" | "sslcert" | "ssl-cert" => {
                crate::tls::read_certificates(&param, &value)?;
            }
            "sslkey" | "ssl-key" => {
                crate::tls::read_private_key(&param, &value)?;
            }
            _ => {}
        }
    }
    Ok(name)
}

/// The database name in a connection URL.
pub fn database_name(url: &str) -> Result<String, String> {
    let options = PgConnectOptions::from_str(url).map_err(|error| error.to_string())?;
    named(&options)
        .map(str::to_owned)
        .ok_or_else(|| NO_DATABASE.to_owned())
}

const NO_DATABASE: &str = "the URL names no database";

/// The database the options name, if they name one.
fn named(options: &PgConnectOptions) -> Option<&str> {
    options.get_database().filter(|name| !name.is_empty())
}

/// Connects to the service database, creating and migrating it first. Retries with
/// backoff while PostgreSQL is unreachable, so services may start in any order.
pub async fn prepare(
    url: &str,
    pool_size: u32,
    migrator: &Migrator,
    shutdown: &CancellationToken,
) -> Result<PgPool, DbSetupError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(DbSetupError::Url)?
        .application_name("order-saga");
    let name = named(&options).ok_or(DbSetupError::NoDatabase)?.to_owned();

    /// A pooled connection idle longer than this is pinged before it is lent.
    const CHECK_IDLE_AFTER: Duration = Duration::from_secs(10);
    let mut backoff = Backoff::reconnect();
    let pool = loop {
        let attempt = async {
            create_if_missing(&options, &name).await?;
            PgPoolOptions::new()
                .max_connections(pool_size)
                .acquire_timeout(Duration::from_secs(5))
                // sqlx pings every connection it lends by default: a round trip before
                // every transaction and every statement on the pool, about fifteen per
                // saga. A connection in steady use is known to work (a broken one fails its
                // statement, which every caller retries); only one idle for a while is
                // checked before it is lent.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > CHECK_IDLE_AFTER {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options.clone())
                .await
                .map_err(|source| DbSetupError::Create {
                    name: name.clone(),
                    source,
                })
        };
        match attempt.await {
            Ok(pool) => break pool,
            Err(DbSetupError::Create { source, .. }) if is_tls_failure(&source) => {
                return Err(DbSetupError::Tls {
                    server: format!("{}:{}", options.get_host(), options.get_port()),
                    meaning: match crate::tls::handshake_failure(&source) {
                        Some(tls) => crate::tls::explain(
                            tls,
                            &crate::tls::Params {
                                ca: "sslrootcert",
                                client: "sslcert/sslkey",
                            },
                        ),
                        None => source.to_string(),
                    },
                });
            }
            Err(DbSetupError::Create { source, .. }) if is_unreachable(&source) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %source, retry_in = ?delay, "PostgreSQL is not reachable yet");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return Err(DbSetupError::Stopped),
                }
            }
            Err(error) => return Err(error),
        }
    };

    messaging_migrator().run(&pool).await?;
    migrator.run(&pool).await?;
    Ok(pool)
}

/// The shared outbox and inbox tables, with their own history table so that their version
/// numbers never collide with a service's.
pub fn messaging_migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("../migrations/messaging");
    migrator.dangerous_set_table_name("_sqlx_migrations_messaging");
    migrator
}

/// Creates the database through the server's `postgres` database. Replicas starting together
/// may race here; losing the race is success.
async fn create_if_missing(options: &PgConnectOptions, name: &str) -> Result<(), DbSetupError> {
    let error = |source| DbSetupError::Create {
        name: name.to_owned(),
        source,
    };
    let mut admin: PgConnection = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .map_err(error)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .map_err(error)?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = name, "created database"),
            // 42P04 duplicate_database; 23505 when both inserts reach pg_database at once.
            Err(sqlx::Error::Database(db))
                if matches!(db.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(other) => return Err(error(other)),
        }
    }
    let _ = admin.close().await;
    Ok(())
}

/// A TLS handshake that failed, or a server that refuses TLS where the URL demands it:
/// settings to fix, not an outage to wait out.
fn is_tls_failure(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Tls(_)) || crate::tls::handshake_failure(error).is_some()
}

/// Errors that mean "PostgreSQL is not (yet) there, or has no room for us now", worth
/// waiting out rather than counting against a message or failing a start.
pub fn is_unreachable(error: &sqlx::Error) -> bool {
    if is_tls_failure(error) {
        return false;
    }
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_outage_code(&code)),
        // A peer that accepts and at once closes (a proxy or port forward in front of a
        // PostgreSQL that is down): sqlx reads the missing SSL answer as byte 0x00.
        sqlx::Error::Protocol(message) => {
            message.starts_with("unexpected response from SSLRequest")
        }
        _ => false,
    }
}

/// SQLSTATEs that say nothing about the statement, only about the server's state:
/// class 08 (connection exceptions), class 53 (insufficient resources: too many
/// connections for the server, a database or a role, out of memory, disk full), and
/// 57P01-57P03 (shutting down, crashed, starting up).
fn is_outage_code(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_and_connection_errors_are_outages_but_statement_errors_are_not() {
        for code in [
            "08006", "53000", "53100", "53200", "53300", "53400", "57P01", "57P03",
        ] {
            assert!(is_outage_code(code), "{code}");
        }
        for code in ["23505", "40001", "40P01", "22003", "57014", "P0001"] {
            assert!(!is_outage_code(code), "{code}");
        }
    }

    /// What a port forward in front of a stopped PostgreSQL does: accept, then close.
    #[tokio::test]
    async fn a_peer_that_accepts_and_closes_is_unreachable_not_a_failure() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                use tokio::io::AsyncReadExt;
                // Take the SSLRequest, then hang up without an answer.
                let _ = socket.read(&mut [0u8; 8]).await;
                drop(socket);
            }
        });
        let error = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .connect(&format!("postgres://postgres@{addr}/x"))
            .await
            .expect_err("nothing answers");
        assert!(is_unreachable(&error), "{error:?}");
    }
}
