//! order-service: the REST API where sagas start, and where they end.
//!
//! # Layout
//! - [`config`]: its settings (`SAGA_TIMEOUT_SECS` besides the common ones).
//! - [`startup`]: wires database, broker, HTTP, consumer and the timeout sweeper.
//! - [`domain`]: an order's status rules and the parsing of a new order.
//! - [`repo`]: the SQL, on a transaction or the pool.
//! - [`http`]: the `/api/orders` endpoints, the saga view and the dashboard.
//! - [`intake`]: writes new orders, many per transaction under load (group commit).
//! - [`saga`]: what the consumed events do to an order.
//! - [`timeout`]: cancels orders left `PENDING` too long.
//! - [`audit`]: records every event on the exchange for the saga view.

pub mod audit;
pub mod config;
pub mod domain;
pub mod http;
pub mod intake;
pub mod repo;
pub mod saga;
pub mod startup;
pub mod timeout;
