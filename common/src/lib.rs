//! What the four saga services share, written once.
//!
//! # Layout
//! - [`events`]: the wire contract — one struct per event, the [`events::Event`] enum and the
//!   flat JSON [`events::Envelope`] with its routing keys.
//! - [`money`], [`quantity`]: small value types that parse, so invalid amounts never travel.
//! - [`config`]: reads environment variables once, into typed structs, naming the bad one.
//! - [`telemetry`]: `tracing` set-up (`pretty` or `json`, `RUST_LOG`).
//! - [`trace`]: W3C trace context across HTTP and AMQP, and the OTLP exporter.
//! - [`db`]: creates the service's database, connects with backoff, runs migrations.
//! - [`store`]: a [`store::UnitOfWork`] — one transaction that claims an incoming message
//!   (inbox) and records outgoing events (outbox) together with the state change.
//! - [`outbox`]: the relay that publishes committed events with publisher confirms.
//! - [`amqp`]: connection supervision, the topology, publishing, and the consumer loop with
//!   delayed retries and dead-lettering.
//! - [`http`]: the error type every API maps to, extractors that answer in JSON, and the
//!   `/health`, `/ready`, `/metrics` router.
//! - [`host`]: starts and stops a service: database, broker, HTTP, consumer, relay, workers.
//! - [`retry`]: the one wrapper around the `backoff` crate.
//! - [`timefmt`]: the time format of API responses; [`validate`]: input rules shared by APIs.

pub mod amqp;
pub mod config;
pub mod db;
pub mod events;
pub mod host;
pub mod http;
pub mod inbox;
pub mod metrics;
pub mod money;
pub mod outbox;
pub mod quantity;
pub mod retry;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod timefmt;
pub mod trace;
pub mod validate;

pub use service::Service;
