//! What the console's routes, its groups ([`super::groups`]) and its edit
//! ([`super::edit`]) share to reach a service's dead letters: the service a path names,
//! its queue, order-service's broker link, their 404s and 503s, and the operator log entry
//! each action leaves.

use super::AppState;
use common::amqp::broker::Link;
use common::amqp::topology::ConsumerQueue;
use common::http::{Actor, ApiError};
use contract::Service;
use serde_json::Value;

/// Appends an action that has happened on the broker to the operator log. The action
/// cannot share the entry's transaction; an entry that fails to commit is an error the
/// operator sees, though the action stands.
pub(super) async fn record(
    state: &AppState,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: Value,
    result: Value,
) -> Result<(), ApiError> {
    crate::operator_log::append(state.store.pool(), actor, action, target, detail, result)
        .await
        .map_err(|error| {
            tracing::error!(%error, action, target, "an operator action was not logged");
            ApiError::Unavailable(format!(
                "the {action} of {target} happened but its operator log entry failed: {error}"
            ))
        })
}

/// `service`'s queue on order-service's exchange.
pub(super) fn queue_of(state: &AppState, service: Service) -> ConsumerQueue {
    contract::queues::consumer_queue(&state.broker.topology().exchange, service)
}

/// The service a path names, by its short or full name.
pub(super) fn service(name: &str) -> Result<Service, ApiError> {
    Service::ALL
        .into_iter()
        .find(|service| name == service.short_name() || name == service.name())
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no service {name:?}: expected order, inventory, payment or notification"
            ))
        })
}

/// The 404 of a message id that is not (or no longer) among the service's dead letters.
pub(super) fn no_dead_letter(service: Service, message_id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no dead letter {message_id:?} in {}'s queue",
        service.name()
    ))
}

pub(super) fn link(state: &AppState) -> Result<Link, ApiError> {
    state
        .broker
        .current()
        .ok_or_else(|| ApiError::Unavailable("RabbitMQ is not connected".into()))
}

pub(super) fn broken(error: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("RabbitMQ: {error}"))
}
