//! The event traits and the envelope live in the `wire` crate, shared with the published
//! language; here they are re-exported under their old path, with a toy language for
//! `common`'s own tests.

pub use wire::event::*;

/// A published language of two events, for `common`'s own tests.
#[cfg(test)]
pub(crate) mod toy {
    use super::*;
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Started {
        pub id: Uuid,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Stopped {
        pub id: Uuid,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "event_type")]
    pub enum Toy {
        Started(Started),
        Stopped(Stopped),
    }

    impl Published for Toy {
        fn event_type(&self) -> &'static str {
            match self {
                Self::Started(_) => Started::NAME,
                Self::Stopped(_) => Stopped::NAME,
            }
        }
        fn routing_key(&self) -> &'static str {
            match self {
                Self::Started(_) => Started::ROUTING_KEY,
                Self::Stopped(_) => Stopped::ROUTING_KEY,
            }
        }
        fn correlation_id(&self) -> Uuid {
            match self {
                Self::Started(e) => e.id,
                Self::Stopped(e) => e.id,
            }
        }
    }

    impl Kind for Started {
        type Event = Toy;
        const NAME: &'static str = "Started";
        const ROUTING_KEY: &'static str = "thing.started";
        fn of(event: &Toy) -> Option<&Self> {
            match event {
                Toy::Started(e) => Some(e),
                _ => None,
            }
        }
    }

    impl Kind for Stopped {
        type Event = Toy;
        const NAME: &'static str = "Stopped";
        const ROUTING_KEY: &'static str = "thing.stopped";
        fn of(event: &Toy) -> Option<&Self> {
            match event {
                Toy::Stopped(e) => Some(e),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::toy::*;
    use super::*;
    use uuid::Uuid;

    #[test]
    fn an_envelope_is_one_flat_object_and_reads_back() {
        let envelope = Envelope::new(Toy::Started(Started { id: Uuid::nil() }));
        let body: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 4, "{body}");
        assert_eq!(body["event_type"], "Started");
        // Read back, it is the same body (the time kept to microseconds).
        let read = Envelope::<Toy>::from_json(&envelope.to_json()).unwrap();
        assert_eq!(read.to_json(), envelope.to_json());
        assert_eq!(read.event, envelope.event);
    }

    #[test]
    fn a_tuple_of_kinds_lists_their_routing_keys() {
        assert_eq!(
            <(Started, Stopped) as Kinds>::ROUTING_KEYS,
            ["thing.started", "thing.stopped"]
        );
    }
}
