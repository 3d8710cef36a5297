//! Why a service could not start, and the one check of its subscriptions made before it
//! does.

use crate::amqp::broker::{Misconfigured, NotInLayout};
use crate::amqp::topology::ConsumerQueue;
use crate::consumer::MessageHandler;
use crate::db::DbSetupError;
use crate::event::Kinds;
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Broker(#[from] Misconfigured),
    #[error(transparent)]
    NotInLayout(#[from] NotInLayout),
    /// The handler's kinds are not what the layout binds its queue to.
    #[error("{service} handles {handled:?} but its queue is bound to {bound:?}")]
    Subscriptions {
        service: &'static str,
        handled: Vec<&'static str>,
        bound: Vec<&'static str>,
    },
}

impl StartupError {
    /// A setting (or a server's certificate) must change before a restart can help: the
    /// process exits with 2, as for a bad variable, rather than 1.
    pub fn is_misconfiguration(&self) -> bool {
        matches!(
            self,
            Self::Database(DbSetupError::Tls { .. }) | Self::Broker(_)
        )
    }
}

/// The handler's kinds and its queue's bindings come from the same list of the published
/// language (its `consumes` tuple for the service); a service that names another list
/// would be bound to events it does not handle, or miss some it does.
pub(super) fn check_subscriptions<H: MessageHandler>(
    own: &ConsumerQueue,
) -> Result<(), StartupError> {
    let handled = <H::Consumes as Kinds>::ROUTING_KEYS;
    let same = handled.len() == own.bindings.len()
        && handled.iter().all(|key| own.bindings.contains(key))
        && own.bindings.iter().all(|key| handled.contains(key));
    if same {
        return Ok(());
    }
    Err(StartupError::Subscriptions {
        service: own.owner,
        handled: handled.to_vec(),
        bound: own.bindings.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::{Handle, Handled, HandlerError, Incoming};
    use crate::event::toy::{Started, Stopped, Toy};
    use crate::store::UnitOfWork;

    /// Handles `Started` only.
    struct StartWatcher;

    impl MessageHandler for StartWatcher {
        type Consumes = (Started,);
    }

    impl Handle<Started> for StartWatcher {
        async fn handle(
            &self,
            _: &mut UnitOfWork,
            _: &Started,
            _: &Incoming<Toy>,
        ) -> Result<Handled, HandlerError> {
            Ok(Handled::Done)
        }
    }

    fn queue(bindings: &'static [&'static str]) -> ConsumerQueue {
        ConsumerQueue {
            owner: "watcher",
            name: "things.watcher".into(),
            dead_letters: "things.watcher.dlq".into(),
            bindings,
        }
    }

    #[test]
    fn a_handler_starts_only_on_a_queue_bound_to_exactly_its_kinds() {
        assert!(check_subscriptions::<StartWatcher>(&queue(&["thing.started"])).is_ok());
        let error = check_subscriptions::<StartWatcher>(&queue(&[
            <Started as crate::event::Kind>::ROUTING_KEY,
            <Stopped as crate::event::Kind>::ROUTING_KEY,
        ]))
        .unwrap_err();
        assert!(error.to_string().contains("thing.stopped"), "{error}");
        assert!(check_subscriptions::<StartWatcher>(&queue(&[])).is_err());
    }
}
