//! notification-service: turns the saga's final events into notifications, each logged
//! and recorded exactly once.
//!
//! # Layout
//! - [`config`]: its settings (only the common ones).
//! - [`message`]: the human-readable text of each notification.
//! - [`handlers`]: records and logs one notification per (order, event type).
//! - [`http`]: `GET /api/notifications?order_id=`.
//! - [`startup`]: wires it together.

pub mod config;
pub mod handlers;
pub mod http;
pub mod message;
pub mod startup;
