//! The published language of the order saga (DDD's term): what the four services agree on,
//! and nothing else — the events with their routing keys and publishers, the services'
//! names, who consumes what, and the queue names. The machinery that moves the events is
//! `common`'s, which knows none of this; the two share only `wire`, a crate without I/O:
//! this crate implements its traits ([`wire::event::Published`], [`wire::event::Kind`]) and
//! hands the machinery a [`wire::layout::Layout`] ([`queues::layout`]). So `cargo tree -p
//! contract` shows serde, uuid, chrono, schemars and utoipa, and nothing of lapin, sqlx,
//! axum, reqwest or tokio: another team can take it as it is.
//!
//! # Layout
//! - [`events`]: one struct per event, the [`Event`] enum, their routing keys, who
//!   publishes each, the [`Envelope`] around them, and [`events::KINDS`] listing them.
//! - [`examples`]: one example body of each event.
//! - [`money`], [`quantity`]: value types of event bodies that parse, so invalid amounts
//!   never travel; [`order_id`]: the id every event and read names its order by.
//! - [`service`]: the four services by name.
//! - [`consumes`]: who consumes what — one tuple of kinds per service, the only place a
//!   subscription is written.
//! - [`queues`]: queue names from the exchange, and the layout every service declares.
//! - [`reads`]: the shapes of what one service reads of another over HTTP.
//! - [`schema`]: the JSON Schema of each event, as checked in under `schemas/`.
//! - [`asyncapi`]: the AsyncAPI 3.0 document of every message, checked in as
//!   `asyncapi.json`.

pub mod asyncapi;
pub mod consumes;
pub mod events;
pub mod examples;
pub mod money;
pub mod order_id;
pub mod quantity;
pub mod queues;
pub mod reads;
pub mod schema;
pub mod service;

pub use events::{Envelope, Event};
pub use order_id::OrderId;
pub use service::Service;
