//! From a message to its handler: a service's [`MessageHandler::Consumes`] tuple lists the
//! event kinds it consumes, and each kind goes to the service's [`Handle`] impl for it.

use super::{EventOf, Handled, HandlerError, Incoming, MessageHandler};
use crate::event::{Kind, Kinds};
use crate::store::UnitOfWork;
use std::future::Future;

/// What a service does with one kind of event: one impl per event it consumes, each in its
/// own file (`handlers/<event>.rs`).
pub trait Handle<E: Kind>: Send + Sync {
    /// Applies `event` inside `uow`, which the consumer has already used to claim the
    /// message in the inbox and commits afterwards. Must be idempotent: the same event may
    /// arrive again with another message id.
    fn handle(
        &self,
        uow: &mut UnitOfWork,
        event: &E,
        message: &Incoming<E::Event>,
    ) -> impl Future<Output = Result<Handled, HandlerError>> + Send;
}

/// A list of event kinds, as a tuple, that `H` handles every one of.
pub trait Subscriptions<H>: Kinds {
    /// Hands `message` to `handler`'s impl for its kind; `None` if it is of none of them.
    fn dispatch<'a>(
        handler: &'a H,
        uow: &'a mut UnitOfWork,
        message: &'a Incoming<Self::Event>,
    ) -> impl Future<Output = Option<Result<Handled, HandlerError>>> + Send + 'a;
}

/// Implements [`Subscriptions`] for tuples of every length up to the one given, by
/// peeling the first kind off and recursing.
macro_rules! subscriptions {
    () => {};
    ($first:ident $(, $kind:ident)*) => {
        subscriptions!($($kind),*);
        impl<H, $first $(, $kind)*> Subscriptions<H> for ($first, $($kind,)*)
        where
            H: Sync + Handle<$first> $(+ Handle<$kind>)*,
            $first: Kind,
            $($kind: Kind<Event = $first::Event>),*
        {
            fn dispatch<'a>(
                handler: &'a H,
                uow: &'a mut UnitOfWork,
                message: &'a Incoming<Self::Event>,
            ) -> impl Future<Output = Option<Result<Handled, HandlerError>>> + Send + 'a {
                async move {
                    if let Some(event) = <$first as Kind>::of(&message.envelope.event) {
                        return Some(<H as Handle<$first>>::handle(handler, uow, event, message).await);
                    }
                    $(
                        if let Some(event) = <$kind as Kind>::of(&message.envelope.event) {
                            return Some(
                                <H as Handle<$kind>>::handle(handler, uow, event, message).await,
                            );
                        }
                    )*
                    None
                }
            }
        }
    };
}

subscriptions!(A, B, C, D, E, F, G, K);

/// Applies `message` with the handler for its kind. A message of a kind the service does
/// not consume cannot reach its queue by a binding; one sent there by hand is acked.
pub(super) async fn apply<H: MessageHandler>(
    handler: &H,
    uow: &mut UnitOfWork,
    message: &Incoming<EventOf<H>>,
) -> Result<Handled, HandlerError> {
    match <H::Consumes as Subscriptions<H>>::dispatch(handler, uow, message).await {
        Some(result) => result,
        None => {
            tracing::debug!("not an event this service acts on; ignored");
            Ok(Handled::Done)
        }
    }
}
