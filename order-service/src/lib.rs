//! order-service: the REST API where sagas start, and where they end.
//!
//! # Layout
//! - [`SERVICE`]: its name, port, database, API description and the broker layout of the
//!   published language (`contract`), for `common`.
//! - [`config`]: its settings (`SAGA_TIMEOUT_SECS` besides the common ones).
//! - [`startup`]: wires database, broker, HTTP, consumer and the timeout sweeper.
//! - [`domain`]: an order's status rules and the parsing of a new order.
//! - [`repo`]: the SQL, on a transaction or the pool.
//! - [`http`]: the `/api/orders` endpoints, the saga view and the dashboard.
//! - [`intake`]: writes new orders, many per transaction under load (group commit), and
//!   says why it did not with its own [`intake::IntakeError`].
//! - [`handlers`]: what the consumed events do to an order, one file per event —
//!   [`handlers::inventory_unavailable`], [`handlers::payment_processed`],
//!   [`handlers::payment_failed`].
//! - [`ending`]: the one place an order ends — status, timeline and the `OrderConfirmed`
//!   or `OrderCancelled` it publishes, in one unit of work — for the handlers and the
//!   timeout alike.
//! - [`timeout`]: cancels orders left `PENDING` too long, through [`ending`].
//! - [`audit`]: records every event on the exchange for the saga view.
//! - [`operator_log`]: the append-only record of operators' actions (CONTRACT §16).
//! - [`schema_check`]: checks an operator's edited event body against the contract's schema.
//! - [`cause`]: masks a dead letter's error into its cause, and names the cause's group.

pub mod audit;
pub mod cause;
pub mod config;
pub mod domain;
pub mod ending;
pub mod handlers;
pub mod http;
pub mod intake;
pub mod operator_log;
pub mod repo;
pub mod schema_check;
pub mod startup;
pub mod timeout;

use common::service::Descriptor;
use contract::Service;

/// What order-service is, for `common`.
pub const SERVICE: Descriptor = Descriptor {
    name: Service::Order.name(),
    crate_name: env!("CARGO_CRATE_NAME"),
    port: 8000,
    database: "order_db",
    description: "Orders: where each saga starts and ends. The messages the services exchange \
                  are described by the AsyncAPI document at [/asyncapi.json](/asyncapi.json).",
    layout: contract::queues::layout,
};
