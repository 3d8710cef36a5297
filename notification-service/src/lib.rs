//! notification-service: turns the saga's final events into notifications, each logged
//! and recorded exactly once.
//!
//! # Layout
//! - [`SERVICE`]: its port, database, API description and subscriptions, for `common`.
//! - [`config`]: its settings (only the common ones).
//! - [`handlers`]: records and logs one notification per (order, event type); one file per
//!   consumed event, with the text it tells the customer — [`handlers::order_confirmed`],
//!   [`handlers::order_cancelled`], [`handlers::payment_processed`],
//!   [`handlers::payment_failed`], [`handlers::payment_refunded`].
//! - [`http`]: `GET /api/notifications?order_id=`.
//! - [`startup`]: wires it together.

pub mod config;
pub mod handlers;
pub mod http;
pub mod startup;

use common::Service;
use common::service::Descriptor;

/// What notification-service is, for `common`.
pub const SERVICE: Descriptor = Descriptor::new(
    Service::Notification,
    8003,
    "notification_db",
    "Notifications sent for final events.",
    handlers::SUBSCRIPTIONS,
);
