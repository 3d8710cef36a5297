//! The payment provider, as the worker sees it: charge and refund, each under an
//! idempotency key, with answers classified into what is known and what is not
//! (CONTRACT §7).
//!
//! Two implementations with the same semantics: [`http::HttpProvider`] talks to a card
//! processor's API (`PAYMENT_PROVIDER_URL`); [`simulator::Simulator`] plays one inside the
//! service. Both store the answer of each key, so asking again with a key never charges
//! twice.
//!
//! Every call needs a [`Permit`] from the circuit breaker ([`crate::breaker`]) and reports
//! its outcome to it: the breaker sits where every provider call goes through.

pub mod http;
pub mod simulator;

use crate::breaker::Permit;
use contract::OrderId;
use contract::money::Money;
use std::time::Instant;

/// One try of a payment attempt. Every try of the same attempt carries the same key.
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    /// `<order_id>:<attempt>`.
    pub key: String,
    pub order_id: OrderId,
    pub amount: Money,
}

/// Giving back a charge, once per order.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    /// `<order_id>:refund`.
    pub key: String,
    pub charge_id: String,
    pub amount: Money,
}

/// The key of attempt `attempt` (counted from 1) of an order's payment.
pub fn charge_key(order_id: OrderId, attempt: u32) -> String {
    format!("{order_id}:{attempt}")
}

/// The key of an order's refund: one refund per order, whatever happens.
pub fn refund_key(order_id: OrderId) -> String {
    format!("{order_id}:refund")
}

/// What a charge came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeAnswer {
    /// 201: the money is taken.
    Succeeded { charge_id: String },
    /// 402: the card was declined; a next attempt (with a new key) may succeed.
    Declined { reason: String },
    /// Anything else: the charge may or may not have happened; ask again with the same key.
    Unknown(Unknown),
}

/// What a refund came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundAnswer {
    Succeeded { refund_id: String },
    Unknown(Unknown),
}

/// An answer that does not tell the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    pub reason: String,
    /// The provider refused the request itself (422): a bug on our side, such as a key
    /// reused with another body. Never answered with a new key; someone must look.
    pub client_bug: bool,
}

impl Unknown {
    /// What the breaker counts as a failure: an unknown outcome, but not our own bug (the
    /// provider answered that one).
    fn breaker_failure(&self) -> Option<&str> {
        (!self.client_bug).then_some(self.reason.as_str())
    }

    /// The metric label: an alert should fire on `client_bug`.
    fn outcome(&self) -> &'static str {
        if self.client_bug {
            "client_bug"
        } else {
            "unknown"
        }
    }

    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            client_bug: false,
        }
    }
}

/// The provider in use.
pub enum Provider {
    Http(http::HttpProvider),
    Simulator(simulator::Simulator),
}

impl Provider {
    /// Asks for a charge, on the breaker's `permit`, and tells the breaker how it ended (a
    /// decline is an answer); counts it in `payment_provider_requests_total{kind, outcome}`
    /// and `payment_provider_duration_seconds{kind}`.
    pub async fn charge(&self, request: &ChargeRequest, permit: Permit) -> ChargeAnswer {
        let started = Instant::now();
        let answer = match self {
            Self::Http(provider) => provider.charge(request).await,
            Self::Simulator(simulator) => simulator.charge(request).await,
        };
        let (outcome, failure) = match &answer {
            ChargeAnswer::Succeeded { .. } => ("succeeded", None),
            ChargeAnswer::Declined { .. } => ("declined", None),
            ChargeAnswer::Unknown(unknown) => (unknown.outcome(), unknown.breaker_failure()),
        };
        permit.record(failure);
        count_call("charge", outcome);
        record_duration("charge", started);
        answer
    }

    /// Asks for a refund; on a permit and counted like [`Provider::charge`].
    pub async fn refund(&self, request: &RefundRequest, permit: Permit) -> RefundAnswer {
        let started = Instant::now();
        let answer = match self {
            Self::Http(provider) => provider.refund(request).await,
            Self::Simulator(simulator) => simulator.refund(request).await,
        };
        let (outcome, failure) = match &answer {
            RefundAnswer::Succeeded { .. } => ("succeeded", None),
            RefundAnswer::Unknown(unknown) => (unknown.outcome(), unknown.breaker_failure()),
        };
        permit.record(failure);
        count_call("refund", outcome);
        record_duration("refund", started);
        answer
    }

    /// For the log line at start.
    pub fn describe(&self) -> String {
        match self {
            Self::Http(provider) => format!("HTTP provider at {}", provider.base_url()),
            Self::Simulator(_) => "built-in simulator".to_owned(),
        }
    }
}

/// Counts one call in `payment_provider_requests_total{kind, outcome}`.
pub(crate) fn count_call(kind: &'static str, outcome: &'static str) {
    metrics::counter!("payment_provider_requests_total", "kind" => kind, "outcome" => outcome)
        .increment(1);
}

fn record_duration(kind: &'static str, started: Instant) {
    metrics::histogram!("payment_provider_duration_seconds", "kind" => kind)
        .record(started.elapsed().as_secs_f64());
}
