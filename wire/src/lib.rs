//! The shapes a published language (`contract`) and the machinery that moves it (`common`)
//! both speak, and nothing that does I/O, so a team can take the published language
//! without lapin, sqlx or axum:
//!
//! - [`event`]: the traits an event enum and its kinds implement, and the [`event::Envelope`]
//!   every message body is;
//! - [`layout`]: the queues a published language puts on one exchange;
//! - [`timestamp`]: a time as the API writes it, with its OpenAPI schema.

pub mod event;
pub mod layout;
pub mod timestamp;
