//! inventory-service: owns the stock; reserves every item of an order in one transaction
//! or none, and releases a reservation when its order is cancelled.
//!
//! # Layout
//! - [`SERVICE`]: its name, port, database, API description and the broker layout of the
//!   published language (`contract`), for `common`.
//! - [`startup`]: wires database, broker, HTTP and consumer.
//! - [`stock`]: the SQL that reserves and releases, locking products in a fixed order.
//! - [`handlers`]: one file per consumed event —
//!   [`handlers::order_created`] reserves, [`handlers::order_cancelled`] releases.
//! - [`http`]: the `/api/inventory` endpoints (the `product_id` in the path is a
//!   `common::ids::ProductId`, checked by its extractor).

pub mod handlers;
pub mod http;
pub mod startup;
pub mod stock;

use common::service::Descriptor;
use contract::Service;

/// What inventory-service is, for `common`.
pub const SERVICE: Descriptor = Descriptor {
    name: Service::Inventory.name(),
    crate_name: env!("CARGO_CRATE_NAME"),
    port: 8001,
    database: "inventory_db",
    description: "Stock and reservations.",
    layout: contract::queues::layout,
};
