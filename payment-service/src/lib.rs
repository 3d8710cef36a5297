//! payment-service: charges reserved orders (simulated), retrying with exponential backoff,
//! and refunds orders that were cancelled after all.
//!
//! # Layout
//! - [`config`]: `PAYMENT_SUCCESS_RATE`, `PAYMENT_MAX_ATTEMPTS`, `PAYMENT_RETRY_BASE_MS`,
//!   `PAYMENT_SEED` besides the common settings.
//! - [`gateway`]: the simulated payment provider.
//! - [`payments`]: the SQL; one row per order, so an order is never charged twice.
//! - [`handlers`]: `InventoryReserved` → charge; `OrderCancelled` → refund or stop.
//! - [`http`]: `GET /api/payments/{order_id}`.
//! - [`startup`]: wires it together.

pub mod config;
pub mod gateway;
pub mod handlers;
pub mod http;
pub mod payments;
pub mod startup;
