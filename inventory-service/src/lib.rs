//! inventory-service: owns the stock; reserves every item of an order in one transaction
//! or none, and releases a reservation when its order is cancelled.
//!
//! # Layout
//! - [`SERVICE`]: its port, database, API description and subscriptions, for `common`.
//! - [`config`]: its settings (only the common ones).
//! - [`startup`]: wires database, broker, HTTP and consumer.
//! - [`stock`]: the SQL that reserves and releases, locking products in a fixed order.
//! - [`handlers`]: one file per consumed event —
//!   [`handlers::order_created`] reserves, [`handlers::order_cancelled`] releases.
//! - [`http`]: the `/api/inventory` endpoints (the `product_id` in the path is a
//!   `common::ids::ProductId`, checked by its extractor).

pub mod config;
pub mod handlers;
pub mod http;
pub mod startup;
pub mod stock;

use common::Service;
use common::service::Descriptor;

/// What inventory-service is, for `common`.
pub const SERVICE: Descriptor = Descriptor::new(
    Service::Inventory,
    8001,
    "inventory_db",
    "Stock and reservations.",
    handlers::SUBSCRIPTIONS,
);
