//! payment-service: charges reserved orders through a payment provider — an HTTP card
//! processor or the built-in simulator — at most once per order, retrying declines with
//! exponential backoff, and refunds orders that were cancelled after all (CONTRACT §7).
//!
//! # Layout
//! - [`SERVICE`]: its name, port, database, API description and the broker layout of the
//!   published language (`contract`), for `common`.
//! - [`config`]: `PAYMENT_SUCCESS_RATE`, `PAYMENT_MAX_ATTEMPTS`, `PAYMENT_RETRY_BASE_MS`,
//!   `PAYMENT_SEED`, `PAYMENT_PROVIDER_URL`, `PAYMENT_PROVIDER_TIMEOUT_MS`,
//!   `PAYMENT_BREAKER_FAILURES`, `PAYMENT_BREAKER_OPEN_MS` besides the common settings.
//! - [`provider`]: charge and refund under idempotency keys; HTTP or simulated.
//! - [`breaker`]: the circuit breaker every provider call passes (CONTRACT §13), and each
//!   replica's state in the database.
//! - [`payments`]: the SQL; one row per order, holding the attempt in flight — the row
//!   itself, the consumer's requests, the worker's lease, and what answers do to it.
//! - [`handlers`]: the consumer's quick part, one file per consumed event —
//!   [`handlers::inventory_reserved`]: a payment is due; [`handlers::order_cancelled`]:
//!   stop, refund later, or leave a tombstone.
//! - [`worker`]: asks the provider for due payments, outside any transaction — the claim
//!   loop, one charge step, one refund step, and the `NOTIFY` that wakes it.
//! - [`http`]: `GET /api/payments/{order_id}`, and `GET /breaker` (every live replica's
//!   breaker).
//! - [`startup`]: wires it together.

pub mod breaker;
pub mod config;
pub mod handlers;
pub mod http;
pub mod payments;
pub mod provider;
pub mod startup;
pub mod worker;

use common::service::Descriptor;
use contract::Service;

/// What payment-service is, for `common`.
pub const SERVICE: Descriptor = Descriptor {
    name: Service::Payment.name(),
    crate_name: env!("CARGO_CRATE_NAME"),
    port: 8002,
    database: "payment_db",
    description: "Simulated payments, one per order.",
    layout: contract::queues::layout,
};
