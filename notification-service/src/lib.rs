//! notification-service: turns the saga's final events into notifications, each logged
//! and recorded exactly once.
//!
//! # Layout
//! - [`SERVICE`]: its name, port, database, API description and the broker layout of the
//!   published language (`contract`), for `common`.
//! - [`handlers`]: records and logs one notification per (order, event type); one file per
//!   consumed event, with the text it tells the customer — [`handlers::order_confirmed`],
//!   [`handlers::order_cancelled`], [`handlers::payment_processed`],
//!   [`handlers::payment_failed`], [`handlers::payment_refunded`].
//! - [`http`]: `GET /api/notifications?order_id=`.
//! - [`startup`]: wires it together.

pub mod handlers;
pub mod http;
pub mod startup;

use common::service::Descriptor;
use contract::Service;

/// What notification-service is, for `common`.
pub const SERVICE: Descriptor = Descriptor {
    name: Service::Notification.name(),
    crate_name: env!("CARGO_CRATE_NAME"),
    port: 8003,
    database: "notification_db",
    description: "Notifications sent for final events.",
    layout: contract::queues::layout,
};
