//! Starting a host's tasks, and the one `ready` line once RabbitMQ is connected (or the
//! broker's answer that it can never be used as configured).

use super::stop::Stoppable;
use super::{StartupError, Worker};
use crate::amqp::broker::{Broker, Misconfigured};
use crate::auth::Authenticator;
use crate::config::CommonConfig;
use crate::outbox::Relay;
use crate::store::Store;
use axum::Router;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The broker's supervisor; the receiver hears from it if RabbitMQ cannot be used as
/// configured.
pub(super) fn broker(broker: &Broker) -> (Stoppable, oneshot::Receiver<Misconfigured>) {
    let stop = CancellationToken::new();
    let (misconfigured_tx, misconfigured) = oneshot::channel();
    let task = tokio::spawn({
        let broker = broker.clone();
        let stop = stop.clone();
        async move {
            if let Err(error) = broker.run(stop).await {
                let _ = misconfigured_tx.send(error);
            }
        }
    });
    (Stoppable { task, stop }, misconfigured)
}

/// The outbox relay.
pub(super) fn relay(store: &Store, broker: &Broker) -> Stoppable {
    let stop = CancellationToken::new();
    let relay = Relay::new(store.pool().clone(), store.outbox().clone(), broker.clone());
    let task = tokio::spawn(relay.run(stop.clone()));
    Stoppable { task, stop }
}

/// The HTTP server, which stops taking requests when `shutdown` is cancelled.
pub(super) fn http(
    listener: TcpListener,
    app: Router,
    shutdown: &CancellationToken,
) -> JoinHandle<()> {
    let serve = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    tokio::spawn(async move {
        if let Err(error) = serve.await {
            tracing::error!(%error, "the HTTP server failed");
        }
    })
}

/// The service's own workers, and the host's: pruning the inbox and, when authentication
/// is on, refreshing its keys.
pub(super) fn workers(
    workers: Vec<Worker>,
    store: &Store,
    auth: Option<&Authenticator>,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut tasks: Vec<_> = workers.into_iter().map(tokio::spawn).collect();
    tasks.push(tokio::spawn(crate::inbox::prune(
        store.pool().clone(),
        shutdown.clone(),
    )));
    if let Some(auth) = auth {
        tasks.push(tokio::spawn(auth.keys().clone().run(shutdown.clone())));
    }
    tasks
}

/// Logs `ready` once RabbitMQ is connected; returns the broker's error (having cancelled
/// `shutdown`) if it can never be used as configured. Returns early, saying nothing, if
/// the service is stopped first.
pub(super) async fn announce_ready(
    broker: &Broker,
    config: &CommonConfig,
    http_addr: Option<SocketAddr>,
    shutdown: &CancellationToken,
    mut misconfigured: oneshot::Receiver<Misconfigured>,
) -> Option<StartupError> {
    tokio::select! {
        link = broker.connected(shutdown) => {
            if link.is_some() {
                tracing::info!(
                    service = config.service.name,
                    http_addr = %http_addr.map(|a| a.to_string()).unwrap_or_default(),
                    exchange = %config.exchange,
                    rabbitmq_node = %broker.current().map(|link| link.node).unwrap_or_default(),
                    "ready"
                );
            }
            None
        }
        Ok(error) = &mut misconfigured => {
            shutdown.cancel();
            Some(StartupError::Broker(error))
        }
    }
}
