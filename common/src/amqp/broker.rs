//! One supervised RabbitMQ connection per service process.
//!
//! [`Broker::run`] connects (with backoff), declares the topology, opens a publisher channel
//! in confirm mode, and publishes the live [`Link`] to everyone waiting for it. When the
//! connection dies it withdraws the link and starts over; consumers and the outbox relay
//! simply wait for the next link.

use super::topology::{Service, Topology};
use crate::retry::Backoff;
use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, ConnectionProperties};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A live connection with its publisher channel (confirm mode, shared by everyone who
/// publishes in this process: lapin channels are safe to use concurrently).
#[derive(Clone)]
pub struct Link {
    pub connection: Arc<Connection>,
    pub publisher: Channel,
}

impl Link {
    pub fn is_open(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }
}

/// Handle to the service's broker connection; cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    service: Service,
    topology: Topology,
    link: watch::Sender<Option<Link>>,
}

impl Broker {
    pub fn new(url: impl Into<String>, service: Service, topology: Topology) -> Self {
        Self {
            inner: Arc::new(Inner {
                url: url.into(),
                service,
                topology,
                link: watch::Sender::new(None),
            }),
        }
    }

    pub fn service(&self) -> Service {
        self.inner.service
    }

    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    /// The link, if the connection is up right now.
    pub fn current(&self) -> Option<Link> {
        self.inner
            .link
            .borrow()
            .as_ref()
            .filter(|link| link.is_open())
            .cloned()
    }

    /// Waits until a link is up; `None` once `stop` is cancelled.
    pub async fn connected(&self, stop: &CancellationToken) -> Option<Link> {
        let mut updates = self.inner.link.subscribe();
        loop {
            if stop.is_cancelled() {
                return None;
            }
            if let Some(link) = self.current() {
                return Some(link);
            }
            tokio::select! {
                changed = updates.changed() => {
                    if changed.is_err() { return None; }
                }
                // A link that died without the supervisor noticing yet: look again soon.
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.cancelled() => return None,
            }
        }
    }

    /// Keeps a connection up until `stop`, then closes it.
    pub async fn run(&self, stop: CancellationToken) {
        let mut backoff = Backoff::reconnect();
        while !stop.is_cancelled() {
            match self.open().await {
                Ok(link) => {
                    backoff.reset();
                    tracing::info!(exchange = %self.inner.topology.exchange, "connected to RabbitMQ");
                    self.inner.link.send_replace(Some(link.clone()));
                    tokio::select! {
                        _ = stop.cancelled() => {
                            self.inner.link.send_replace(None);
                            let _ = link.connection.close(200, "service stopping".into()).await;
                            return;
                        }
                        _ = closed(&link) => {
                            self.inner.link.send_replace(None);
                            tracing::warn!("lost the RabbitMQ connection; reconnecting");
                        }
                    }
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in = ?delay, "cannot reach RabbitMQ");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.cancelled() => return,
                    }
                }
            }
        }
    }

    async fn open(&self) -> lapin::Result<Link> {
        let name = format!("{} ({})", self.inner.service.name(), std::process::id());
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let connection = Connection::connect(&self.inner.url, properties).await?;
        let setup = async {
            let publisher = connection.create_channel().await?;
            self.inner
                .topology
                .declare(&publisher, self.inner.service)
                .await?;
            publisher
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            Ok(publisher)
        };
        match setup.await {
            Ok(publisher) => Ok(Link {
                connection: Arc::new(connection),
                publisher,
            }),
            Err(error) => {
                let _ = connection.close(200, "setup failed".into()).await;
                Err(error)
            }
        }
    }
}

/// Resolves when the link stops working.
async fn closed(link: &Link) {
    while link.is_open() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
