//! inventory-service: owns the stock; reserves every item of an order in one transaction
//! or none, and releases a reservation when its order is cancelled.
//!
//! # Layout
//! - [`config`]: its settings (only the common ones).
//! - [`startup`]: wires database, broker, HTTP and consumer.
//! - [`stock`]: the SQL that reserves and releases, locking products in a fixed order.
//! - [`handlers`]: `OrderCreated` → reserve; `OrderCancelled` → release.
//! - [`http`]: the `/api/inventory` endpoints.

pub mod config;
pub mod handlers;
pub mod http;
pub mod startup;
pub mod stock;
