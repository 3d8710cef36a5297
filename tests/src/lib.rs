//! Helpers for the end-to-end tests. Each test starts the real service binaries on its
//! own exchange and its own four databases, so tests run in parallel and never see each
//! other's messages, and removes both when it ends.
//!
//! # Layout
//! - [`stack`]: [`stack::TestStack`] — build and start one, its service processes (stop,
//!   kill, pause, restart), and its cleanup.
//! - [`api`]: typed calls to the services' HTTP APIs.
//! - [`auth`]: signing keys, tokens and a JWKS endpoint of the test's own (CONTRACT §12).
//! - [`browser`]: headless Chromium over WebDriver, for the dashboard.
//! - [`broker`]: the test's own view of RabbitMQ — tap every event and read queues; publish
//!   duplicates, contract-shaped events and poison; `rabbitmqctl` counts; cleanup.
//! - [`cluster`]: a three-node RabbitMQ cluster for `cluster.rs` — killing, stopping and
//!   partitioning its nodes, its quorum queues' leaders.
//! - [`contract`]: CONTRACT §4's names (and §13's) as literal strings.
//! - [`inflight`]: what a fault test asserts at the moment it strikes.
//! - [`invariants`]: CONTRACT §6, checked once the system goes quiet: collects what
//!   `saga_invariants` (shared with loadgen) checks, plus outboxes and queue counts.
//! - [`db_faults`]: a handler that fails every time (inserts refused by a trigger); writes
//!   held mid-statement until the test lets them go.
//! - [`eventually`]: polling with a deadline, instead of sleeping.
//! - [`proxy`]: a TCP proxy to cut, slow or hold one service's connection.
//! - [`load`]: orders posted continuously through a fault, each outcome recorded.
//! - [`private_rabbit`]: a RabbitMQ node of the test's own, for what must not touch the
//!   shared one (a resource alarm, a TLS listener).
//! - [`otlp`]: an OTLP/HTTP receiver that collects the services' spans.
//! - [`provider_stub`]: a payment provider with a ledger and injected faults (CONTRACT §7):
//!   its endpoints, and the checks of its ledger.
//! - [`saga_timeout`]: the saga timeout triggered by the test, not raced.
//! - [`tls`]: a test PKI, a TLS-only RabbitMQ node and PostgreSQL instance of the test's
//!   own, and running a service that must refuse to start.
//! - [`k8s`]: the Kubernetes manifests rendered with `kubectl kustomize`, read back.

pub mod api;
pub mod auth;
pub mod broker;
pub mod browser;
pub mod cluster;
pub mod contract;
pub mod db_faults;
pub mod dead_letters;
pub mod eventually;
pub mod inflight;
pub mod invariants;
pub mod k8s;
pub mod load;
pub mod otlp;
pub mod private_rabbit;
pub mod provider_stub;
pub mod proxy;
pub mod saga_timeout;
pub mod stack;
pub mod tls;

pub use ::contract::Service;
pub use eventually::eventually;
pub use stack::TestStack;

/// `service` as `common` would know it, for a test that builds a configuration or a broker
/// link of its own (no port, no database of its own).
pub fn descriptor(service: Service) -> common::service::Descriptor {
    common::service::Descriptor {
        name: service.name(),
        crate_name: "saga_tests",
        port: 0,
        database: "unused_db",
        description: "",
        layout: ::contract::queues::layout,
    }
}
