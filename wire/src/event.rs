//! What travels, as the machinery knows it: that there are events, and how each travels.
//! Which events there are is a published language (a `contract` crate), which implements
//! [`Published`] for its event enum and [`Kind`] for each payload; `common` moves them
//! through the outbox, the broker and the consumer without naming any.
//!
//! The body of every message is an [`Envelope`]: a flat JSON object with the common fields
//! `event_id` and `timestamp` around the event's own, whose serde form carries the
//! `event_type` tag.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use uuid::Uuid;

/// A published language's event enum: one variant per kind, tagged by `event_type` on the
/// wire.
pub trait Published: Serialize + DeserializeOwned + Debug + Clone + Send + Sync + 'static {
    /// The `event_type` written in the body; also the AMQP `type` and the metrics label.
    fn event_type(&self) -> &'static str;

    /// The routing key it is published with.
    fn routing_key(&self) -> &'static str;

    /// The saga instance it belongs to (the order): the AMQP `correlation_id`, the
    /// outbox's `order_id` and the `order_id` of every log line about it.
    fn correlation_id(&self) -> Uuid;
}

/// One kind of event as a type, so that a service can name the events it consumes and
/// write one handler per kind (the consumer's `Handle` trait).
pub trait Kind: Sized + Send + Sync + 'static {
    /// The enum this kind is a variant of.
    type Event: Published;
    /// The `event_type` written on the wire.
    const NAME: &'static str;
    const ROUTING_KEY: &'static str;

    /// This kind's payload, if `event` is of this kind.
    fn of(event: &Self::Event) -> Option<&Self>;
}

/// A list of kinds of one published language, as a tuple: what a queue is bound to.
pub trait Kinds: 'static {
    type Event: Published;
    /// The routing keys a queue must be bound to for these events.
    const ROUTING_KEYS: &'static [&'static str];
}

/// Implements [`Kinds`] for tuples of every length up to the one given, by peeling the
/// first kind off and recursing.
macro_rules! kinds {
    () => {};
    ($first:ident $(, $kind:ident)*) => {
        kinds!($($kind),*);
        impl<$first: Kind $(, $kind: Kind<Event = $first::Event>)*> Kinds for ($first, $($kind,)*) {
            type Event = $first::Event;
            const ROUTING_KEYS: &'static [&'static str] =
                &[$first::ROUTING_KEY $(, $kind::ROUTING_KEY)*];
        }
    };
}

kinds!(A, B, C, D, E, F, G, H);

/// An event with its identity and time: the whole message body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<E> {
    /// Fresh for every event; also the AMQP `message_id` and the inbox key.
    pub event_id: Uuid,
    #[serde(flatten)]
    pub event: E,
    #[serde(with = "rfc3339_micros")]
    pub timestamp: DateTime<Utc>,
}

impl<E: Published> Envelope<E> {
    /// Wraps an event that happens now.
    pub fn new(event: E) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event,
            timestamp: Utc::now(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("events always serialize")
    }

    /// Reads a body. Fields the reader does not know are ignored (a tolerant reader: a
    /// newer publisher may add optional fields before every consumer knows them).
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// RFC 3339 in UTC with microseconds, e.g. `2025-12-16T10:00:00.000000Z`.
mod rfc3339_micros {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}
