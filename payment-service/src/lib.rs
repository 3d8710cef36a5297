//! payment-service: charges reserved orders through a payment provider — an HTTP card
//! processor or the built-in simulator — at most once per order, retrying declines with
//! exponential backoff, and refunds orders that were cancelled after all (CONTRACT §7).
//!
//! # Layout
//! - [`config`]: `PAYMENT_SUCCESS_RATE`, `PAYMENT_MAX_ATTEMPTS`, `PAYMENT_RETRY_BASE_MS`,
//!   `PAYMENT_SEED`, `PAYMENT_PROVIDER_URL`, `PAYMENT_PROVIDER_TIMEOUT_MS` besides the
//!   common settings.
//! - [`provider`]: charge and refund under idempotency keys; HTTP or simulated.
//! - [`payments`]: the SQL; one row per order, holding the attempt in flight.
//! - [`handlers`]: the consumer's quick part — `InventoryReserved` → a payment is due;
//!   `OrderCancelled` → stop, refund later, or leave a tombstone.
//! - [`worker`]: asks the provider for due payments, outside any transaction.
//! - [`http`]: `GET /api/payments/{order_id}`.
//! - [`startup`]: wires it together.

pub mod config;
pub mod handlers;
pub mod http;
pub mod payments;
pub mod provider;
pub mod startup;
pub mod worker;
