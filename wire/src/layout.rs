//! The queues a published language puts on one exchange: what each service consumes,
//! and the bounded copies a read model takes. The machinery (`common::amqp::topology`)
//! declares them, with what only it needs (delay queues, dead-letter arguments).

/// The queue one service consumes from, as the published language lays it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerQueue {
    /// The service that consumes it: its name (`common::service::Descriptor::name`).
    pub owner: &'static str,
    pub name: String,
    /// Where its messages go when they cannot be handled.
    pub dead_letters: String,
    /// The routing keys of the events its owner consumes.
    pub bindings: &'static [&'static str],
}

/// A queue that takes a bounded copy of some events for a read model (e.g. a saga view);
/// nothing in the saga depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyQueue {
    pub name: String,
    pub bindings: &'static [&'static str],
    /// Routing keys an older layout bound it to: unbound at every declaration, so a broker
    /// that ran the older layout stops copying them (a binding outlives its declarer).
    pub retired: &'static [&'static str],
}

/// Every queue the published language puts on one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub consumers: Vec<ConsumerQueue>,
    pub copies: Vec<CopyQueue>,
}
