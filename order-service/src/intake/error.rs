//! Why the intake did not take an order, in its own words; the HTTP layer turns these
//! into status codes (`http::orders`), so the intake knows nothing of HTTP.

use std::sync::Arc;
use std::time::Duration;

/// Why an order was not placed. Whatever the variant, nothing was created (CONTRACT §9).
#[derive(Debug, Clone, thiserror::Error)]
pub enum IntakeError {
    /// Too much waiting work, a database that is down or slow, or a stopping service:
    /// trying again shortly may work.
    #[error("{0}")]
    Unavailable(String),
    /// As many orders are pending as the system finishes in time: a place should be free
    /// after `retry_after`.
    #[error("{why}")]
    Busy { why: String, retry_after: Duration },
    /// The `Idempotency-Key` belongs to another request body, or to a request still
    /// being written.
    #[error("{0}")]
    KeyConflict(String),
    /// A fault of ours, not the client's: the database error, kept for the log (shared,
    /// since every request of a failed batch gets the same answer).
    #[error("the order was not written")]
    Failed(#[source] Arc<sqlx::Error>),
}
