//! The AMQP headers a failing message gathers on its way through the delay queues into the
//! dead-letter queue, and how they are read back.
//!
//! The consumer writes them and the dead-letter tools read and strip them; both take them
//! from here.

use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable};

/// Counts how many times a message has been sent back for another attempt.
pub(crate) const RETRY_HEADER: &str = "x-retry-count";

/// Keeps the routing key a message was first published with; delay queues re-route a
/// retried message by queue name, so its own key no longer says where it goes.
pub(crate) const ORIGINAL_ROUTING_KEY: &str = "x-original-routing-key";

/// When a message first failed: written on its first retry (or when it is dead-lettered at
/// once) and kept through the delay queues into the dead-letter queue.
pub(crate) const FIRST_FAILED_AT: &str = "x-first-failed-at";

/// When a message failed for the last time, on its way to the dead-letter queue.
pub(crate) const FAILED_AT: &str = "x-failed-at";

/// Why a message was dead-lettered.
pub(crate) const ERROR: &str = "x-error";

/// How many times a dead-lettered message was tried.
pub(crate) const ATTEMPTS: &str = "x-attempts";

/// The headers a replay removes, so the message starts a fresh round of retries.
pub(crate) const FAILURE_HEADERS: [&str; 5] =
    [RETRY_HEADER, ERROR, ATTEMPTS, FAILED_AT, FIRST_FAILED_AT];

/// Records the routing key `delivery` came with, unless an earlier hop already did.
pub(crate) fn keep_original_routing_key(headers: &mut FieldTable, delivery: &Delivery) {
    if !headers.contains_key(ORIGINAL_ROUTING_KEY) {
        headers.insert(
            ORIGINAL_ROUTING_KEY.into(),
            AMQPValue::LongString(delivery.routing_key.as_str().into()),
        );
    }
}

/// Records `now` (RFC 3339) as the first failure, unless an earlier failure already did.
pub(crate) fn keep_first_failure(headers: &mut FieldTable, now: &str) {
    if !headers.contains_key(FIRST_FAILED_AT) {
        headers.insert(FIRST_FAILED_AT.into(), AMQPValue::LongString(now.into()));
    }
}

/// A numeric header, whichever integer type the sender used; 0 when absent.
pub(crate) fn header_u32(headers: Option<&FieldTable>, name: &str) -> u32 {
    let value = headers.and_then(|headers| headers.inner().get(name));
    match value {
        Some(AMQPValue::LongUInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => (*n).max(0) as u32,
        Some(AMQPValue::LongLongInt(n)) => (*n).clamp(0, u32::MAX as i64) as u32,
        Some(AMQPValue::ShortUInt(n)) => (*n).into(),
        Some(AMQPValue::ShortShortUInt(n)) => (*n).into(),
        _ => 0,
    }
}

/// A text header, long or short string.
pub(crate) fn header_string(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(text) => Some(text.to_string()),
        AMQPValue::ShortString(text) => Some(text.to_string()),
        _ => None,
    }
}
