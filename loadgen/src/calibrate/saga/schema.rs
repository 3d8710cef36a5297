//! The scratch databases: one schema per service in the calibration database, each with
//! the tables (columns, keys, indexes) its service's migrations leave — so every insert
//! and update costs what it costs there. Dropped at the end of the run.
//!
//! Each service's pool sets `search_path` to its schema at connect time, so the hops'
//! statements name the tables as the services do.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The product every order takes one unit of, as bench/outside.py's orders do, so every
/// reservation updates the same stock row, as there.
pub const PRODUCT: &str = "product-A";

/// Its stock: more than any run takes.
const STOCK: i64 = 1_000_000_000;

/// The outbox and inbox every service database has (migrations/messaging).
const MESSAGING: &str = "
CREATE TABLE outbox (
    id           BIGSERIAL   PRIMARY KEY,
    event_id     UUID        NOT NULL UNIQUE,
    event_type   TEXT        NOT NULL,
    routing_key  TEXT        NOT NULL,
    order_id     UUID        NOT NULL,
    causation_id UUID,
    occurred_at  TIMESTAMPTZ NOT NULL,
    payload      BYTEA       NOT NULL,
    traceparent  TEXT,
    tracestate   TEXT,
    written_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE inbox (
    message_id   UUID        PRIMARY KEY,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);
";

/// order-service: orders with their timeline, and the saga view's audit rows (which the
/// happy path no longer writes: kept so the schema is the service's).
const ORDER: &str = "
CREATE TABLE orders (
    id                  UUID        PRIMARY KEY,
    customer_id         TEXT        NOT NULL,
    items               JSONB       NOT NULL,
    total_cents         BIGINT      NOT NULL CHECK (total_cents > 0),
    status              TEXT        NOT NULL CHECK (status IN ('PENDING', 'COMPLETED', 'CANCELLED')),
    cancellation_reason TEXT        CHECK (cancellation_reason IN ('INVENTORY_UNAVAILABLE', 'PAYMENT_FAILED', 'TIMEOUT')),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    idempotency_key     TEXT        UNIQUE,
    timeline            JSONB       NOT NULL DEFAULT '[]'
);
CREATE INDEX orders_newest_first ON orders (created_at DESC, id DESC);
CREATE INDEX orders_by_customer ON orders (customer_id, created_at DESC);
CREATE INDEX orders_pending ON orders (created_at) WHERE status = 'PENDING';
CREATE TABLE saga_events (
    event_id     UUID PRIMARY KEY,
    order_id     UUID NOT NULL,
    event_type   TEXT NOT NULL,
    causation_id UUID,
    publisher    TEXT NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX saga_events_by_order ON saga_events (order_id, occurred_at);
CREATE INDEX saga_events_by_age ON saga_events (recorded_at);
";

/// inventory-service: stock and one reservation per order.
const INVENTORY: &str = "
CREATE TABLE products (
    product_id TEXT        PRIMARY KEY,
    available  INTEGER     NOT NULL CHECK (available >= 0),
    reserved   INTEGER     NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE reservations (
    order_id   UUID        PRIMARY KEY,
    status     TEXT        NOT NULL CHECK (status IN ('RESERVED', 'UNAVAILABLE', 'RELEASED', 'CANCELLED')),
    items      JSONB       NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    reserved_event_id UUID,
    reserved_cause    UUID,
    reserved_at       TIMESTAMPTZ
);
";

/// payment-service: one payment row per order and the built-in simulator's ledger.
const PAYMENT: &str = "
CREATE TABLE payments (
    order_id          UUID        PRIMARY KEY,
    payment_id        UUID        NOT NULL UNIQUE,
    amount_cents      BIGINT,
    status            TEXT        NOT NULL CHECK (status IN ('PENDING', 'PROCESSED', 'FAILED', 'REFUNDED', 'VOID')),
    attempts          INTEGER     NOT NULL DEFAULT 0,
    last_error        TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempt_key       TEXT,
    attempt_open      BOOLEAN     NOT NULL DEFAULT false,
    unknown_tries     INTEGER     NOT NULL DEFAULT 0,
    charge_id         TEXT,
    refund_id         TEXT,
    cancel_requested  BOOLEAN     NOT NULL DEFAULT false,
    due_at            TIMESTAMPTZ,
    lease             UUID,
    reserved_event_id UUID,
    cancel_event_id   UUID,
    traceparent       TEXT,
    tracestate        TEXT,
    CONSTRAINT payments_amount_check CHECK (status = 'VOID' OR amount_cents > 0)
);
CREATE INDEX payments_due ON payments (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE simulator_charges (
    idempotency_key TEXT        PRIMARY KEY,
    order_id        UUID        NOT NULL,
    amount_cents    BIGINT      NOT NULL,
    charge_id       TEXT        NOT NULL UNIQUE,
    succeeded       BOOLEAN     NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX simulator_charges_order ON simulator_charges (order_id);
";

/// notification-service: one notification per (order, event type).
const NOTIFICATION: &str = "
CREATE TABLE notifications (
    id          UUID        PRIMARY KEY,
    order_id    UUID        NOT NULL,
    event_type  TEXT        NOT NULL,
    event_id    UUID        NOT NULL,
    message     TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    occurred_at TIMESTAMPTZ NOT NULL,
    UNIQUE (order_id, event_type)
);
CREATE INDEX notifications_by_time ON notifications (created_at);
CREATE INDEX notifications_by_event_time ON notifications (occurred_at);
";

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
        match self {
            Self::Order => "order",
            Self::Inventory => "inventory",
            Self::Payment => "payment",
            Self::Notification => "notification",
        }
    }

    /// The service's own tables (and, for inventory, the stock to reserve from).
    fn tables(self) -> String {
        match self {
            Self::Order => ORDER.to_owned(),
            Self::Inventory => format!(
                "{INVENTORY} INSERT INTO products (product_id, available) VALUES ('{PRODUCT}', {STOCK});"
            ),
            Self::Payment => PAYMENT.to_owned(),
            Self::Notification => NOTIFICATION.to_owned(),
        }
    }

    /// The schema standing for this service's database in run `run`.
    pub fn schema(self, run: &str) -> String {
        format!("{run}_{}", self.short_name())
    }
}

/// Creates the four schemas of run `run`, each in one transaction.
pub async fn create(url: &str, run: &str) -> Result<(), String> {
    let mut conn = PgConnection::connect(url)
        .await
        .map_err(|e| format!("PostgreSQL at {url}: {e}"))?;
    for database in Database::ALL {
        let schema = database.schema(run);
        let script = format!(
            "BEGIN; CREATE SCHEMA {schema}; SET LOCAL search_path TO {schema};
             {MESSAGING} {} COMMIT;",
            database.tables()
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(script))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("creating the scratch schema {schema}: {e}"))?;
    }
    let _ = conn.close().await;
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
