//! What `GET /ready` checks: the database answers, RabbitMQ is connected, the outbox gets
//! events out and (with authentication on) the signing keys are loaded.
//!
//! A connection blocked by a RabbitMQ resource alarm is connected: the service still takes
//! work into its outbox, which goes out when the alarm clears. `/ready` stays 200 and says
//! `"broker": "blocked"`, and the outbox's wait for confirms does not count the time blocked.

use crate::amqp::alarm::Flow;
use crate::amqp::broker::Broker as BrokerLink;
use crate::auth::Authenticator;
use crate::store::Store;
use serde::Serialize;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// How the service's RabbitMQ connection is, on a ready `/ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BrokerState {
    /// Publishing goes out.
    Connected,
    /// A resource alarm (memory, disk) blocks publishing; events wait in the outbox.
    Blocked,
}

/// The broker side of a ready service.
#[derive(Debug)]
pub(super) struct Broker {
    /// `host:port` of the node.
    pub(super) node: String,
    pub(super) state: BrokerState,
    /// While blocked: RabbitMQ's reason and for how long (`low on memory, for 12 s`).
    pub(super) detail: Option<String>,
}

/// `Ok` with the broker's state when ready, else every reason it is not.
pub(super) async fn check(
    store: &Store,
    broker_link: &BrokerLink,
    auth: Option<&Authenticator>,
) -> Result<Broker, Vec<String>> {
    let database = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(store.pool()),
    )
    .await;
    let database = match database {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(crate::vars::redact_urls(&format!("database: {error}"))),
        Err(_) => Err("database: no answer within 2 s".to_owned()),
    };
    let link = broker_link.current();
    let broker = link
        .as_ref()
        .map(|link| broker_of(link.node.clone(), link.flow()))
        .ok_or_else(|| "RabbitMQ: not connected".to_owned());
    // A relay stuck on a link that looks open: the service takes orders it cannot pass on.
    let counted_from = link.map(|link| match link.flow() {
        Flow::Open { since } => since,
        Flow::Blocked { .. } => Instant::now(),
    });
    let relay = store
        .relay_health()
        .problem(counted_from)
        .map_or(Ok(()), Err);
    // No token could be checked: every authenticated route would answer 503.
    let keys = auth
        .and_then(|auth| auth.keys().not_loaded_reason())
        .map_or(Ok(()), Err);
    let broker_reason = broker.as_ref().map(|_| ()).map_err(Clone::clone);
    let reasons: Vec<String> = [database, broker_reason, relay, keys]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    match broker {
        Ok(broker) if reasons.is_empty() => Ok(broker),
        _ => Err(reasons),
    }
}

fn broker_of(node: String, flow: Flow) -> Broker {
    match flow {
        Flow::Open { .. } => Broker {
            node,
            state: BrokerState::Connected,
            detail: None,
        },
        Flow::Blocked { since, reason } => Broker {
            node,
            state: BrokerState::Blocked,
            detail: Some(format!("{reason}, for {} s", since.elapsed().as_secs())),
        },
    }
}
