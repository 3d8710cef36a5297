//! The machinery every saga service runs on, written once: it knows no event and no
//! service of the saga.
//!
//! Each service hands `common` a [`service::Descriptor`] (its name, port, database, API
//! description, and the broker layout of its published language) and a
//! [`consumer::MessageHandler`] to dispatch to. The events themselves, the services'
//! names, who consumes what and the queue names are the published language's (the
//! `contract` crate), which implements the traits of [`event`].
//!
//! # Layout
//! - [`service`]: the [`service::Descriptor`] a service hands in.
//! - [`event`]: what the machinery needs of events — [`event::Published`] for an event
//!   enum, [`event::Kind`] naming each kind as a type, [`event::Kinds`] for a tuple of
//!   them — and the flat JSON [`event::Envelope`] around each.
//! - [`auth`]: customer authentication — bearer JWTs, their keys, the caller extractors.
//! - [`vars`]: reading one environment variable, the error that names a bad one, and
//!   passwords kept out of messages.
//! - [`config`]: reads the environment once at start, into typed structs.
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
//!   ([`amqp::broker::Link::consume`]), declaring a layout's topology, publishing, the headers of failing
//!   messages, dead letters, and the consumer: subscribe and batch, dispatch to a
//!   service's handlers, the inbox claim, settle (ack, retry, dead-letter).
//! - [`http`]: the error type every API maps to, extractors that answer in JSON, and the
//!   `/health`, `/ready`, `/metrics` router.
//! - [`host`]: starts and stops a service: database, broker, HTTP, consumer, relay, workers.
//! - [`operator_log`]: the append-only record of admin actions (CONTRACT §16).
//! - [`retry`]: the one wrapper around the `backoff` crate.
//! - [`ids`]: customer and product ids, parsed once; [`timestamp`]: the time format of API
//!   responses, with its schema.

pub mod amqp;
pub mod auth;
pub mod config;
pub mod consumer;
pub mod db;
pub mod event;
pub mod host;
pub mod http;
pub mod ids;
pub mod inbox;
pub mod metrics;
pub mod operator_log;
pub mod outbox;
pub mod retry;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod text_enum;
pub mod timestamp;
pub mod tls;
pub mod trace;
pub mod vars;
