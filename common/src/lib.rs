//! What the four saga services share, written once.
//!
//! Each service hands `common` a [`service::Descriptor`] (its port, database, API
//! description, and the subscriptions its handlers derive) and a
//! [`amqp::consumer::MessageHandler`] to dispatch to; `common` keeps only what the wire
//! contract names for all services alike: their names and who consumes what.
//!
//! # Layout
//! - [`service`]: the four services by name, who consumes what (the contract's map), and
//!   the [`service::Descriptor`] a service hands in.
//! - [`events`]: the wire contract — one struct per event, the [`events::Event`] enum, the
//!   [`events::Kind`] trait naming each kind as a type, and the flat JSON
//!   [`events::Envelope`] with its routing keys.
//! - [`money`], [`quantity`]: small value types that parse, so invalid amounts never travel.
//! - [`auth`]: customer authentication — bearer JWTs, their keys, the caller extractors.
//! - [`config`]: reads environment variables once, into typed structs, naming the bad one.
//! - [`telemetry`]: `tracing` set-up (`pretty` or `json`, `RUST_LOG`).
//! - [`text_enum`]: statuses kept as `TEXT`, read back strictly.
//! - [`trace`]: W3C trace context across HTTP and AMQP, and the OTLP exporter.
//! - [`db`]: creates the service's database, connects with backoff, runs migrations.
//! - [`tls`]: the PEM files TLS settings name, and telling a failed handshake from an outage.
//! - [`store`]: a [`store::UnitOfWork`] — one transaction that claims an incoming message
//!   (inbox) and records outgoing events (outbox) together with the state change.
//! - [`inbox`]: claiming applied message ids, and pruning old ones.
//! - [`outbox`]: the outbox row, its write in the unit of work, the publish right after
//!   the commit (with publisher confirms), and the relay that deletes confirmed rows in
//!   bulk and sends what a failure or a crash left behind.
//! - [`amqp`]: connection supervision and the one way to subscribe
//!   ([`amqp::broker::Link::consume`]), the topology, publishing, the headers of failing
//!   messages, dead letters, and the consumer: subscribe and batch, dispatch to a
//!   service's handlers, the inbox claim, settle (ack, retry, dead-letter).
//! - [`http`]: the error type every API maps to, extractors that answer in JSON, and the
//!   `/health`, `/ready`, `/metrics` router.
//! - [`host`]: starts and stops a service: database, broker, HTTP, consumer, relay, workers.
//! - [`retry`]: the one wrapper around the `backoff` crate.
//! - [`ids`]: customer and product ids, parsed once; [`timestamp`]: the time format of API
//!   responses, with its schema.

pub mod amqp;
pub mod auth;
pub mod config;
pub mod db;
pub mod events;
pub mod host;
pub mod http;
pub mod ids;
pub mod inbox;
pub mod metrics;
pub mod money;
pub mod outbox;
pub mod quantity;
pub mod retry;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod text_enum;
pub mod timestamp;
pub mod tls;
pub mod trace;

pub use service::Service;
