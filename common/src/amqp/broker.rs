//! One supervised RabbitMQ connection per service process.
//!
//! [`Broker::run`] connects (with backoff), declares the topology, opens a publisher channel
//! in confirm mode, and publishes the live [`Link`] to everyone waiting for it. When the
//! connection dies it withdraws the link, closes that connection and starts over; consumers
//! and the outbox relay simply wait for the next link. A publisher channel that fails is
//! replaced on the same connection ([`ConfirmChannel`]).
//!
//! While connected it declares the topology again every [`HEAL_EVERY`], and at once when
//! asked ([`Broker::heal`]: a message came back unrouted, a publisher channel failed, the
//! broker cancelled a consumer): a queue or binding deleted by hand comes back by itself.
//!
//! A connection blocked by a resource alarm ([`super::alarm`]) is kept: declaring waits
//! until the alarm clears, and no timeout counts the time blocked, so a block never makes
//! the service reconnect.
//!
//! With several nodes ([`Nodes`]) it connects to the first that answers and, when its node
//! goes away, tries the next one round the list; the backoff applies once every node failed.
//!
//! A node that answers but cannot be used as configured — its TLS handshake fails (a wrong
//! CA, an expired certificate, TLS against a plaintext port, a plaintext URL naming a TLS
//! port) — will not get better by waiting. If every node fails that
//! way before the first connection, [`Broker::run`] gives up with a [`Misconfigured`]
//! error naming `AMQP_URL`, and the service stops (exit code 2) rather than retry forever.
//! Once it has been connected, the same failures are retried like any other, since a
//! server's certificate can be renewed under a running service.

pub use super::link::{Link, Subscription};
pub use super::open_error::{Misconfigured, OpenError};

mod connect;

use super::nodes::Nodes;
use super::open_error::{CLOSE_TIMEOUT, OPEN_TIMEOUT, Unusable};
use super::topology::{ConsumerQueue, Topology};
use crate::retry::Backoff;
use crate::service::Descriptor;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

/// Handle to the service's broker connection; cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    nodes: Nodes,
    service: Descriptor,
    topology: Topology,
    /// The queue this service consumes from, out of the topology's layout.
    own: ConsumerQueue,
    link: watch::Sender<Option<Link>>,
    /// Rung when the topology should be declared again at once.
    heal: Arc<Notify>,
}

/// How often a connected service declares the topology again, so that a queue or binding
/// deleted by hand comes back even when nothing noticed.
pub const HEAL_EVERY: Duration = Duration::from_secs(10);

impl Broker {
    /// `url` is `AMQP_URL`: one URL or several nodes separated by commas (the configuration
    /// has checked it; see [`Nodes::lenient`]).
    pub fn new(
        url: impl Into<String>,
        service: Descriptor,
        topology: Topology,
    ) -> Result<Self, NotInLayout> {
        Self::with_nodes(Nodes::lenient(&url.into()), service, topology)
    }

    /// The nodes as the configuration parsed them, TLS settings read. Fails when the
    /// topology's layout gives `service` no queue to consume from.
    pub fn with_nodes(
        nodes: Nodes,
        service: Descriptor,
        topology: Topology,
    ) -> Result<Self, NotInLayout> {
        let own = topology
            .consumer(service.name)
            .cloned()
            .ok_or(NotInLayout(service.name))?;
        Ok(Self {
            inner: Arc::new(Inner {
                nodes,
                service,
                topology,
                own,
                link: watch::Sender::new(None),
                heal: Arc::new(Notify::new()),
            }),
        })
    }

    /// `…-service`: the AMQP `app_id` of what it publishes, its consumer tags.
    pub fn name(&self) -> &'static str {
        self.inner.service.name
    }

    /// The queue this service consumes from.
    pub fn own_queue(&self) -> &ConsumerQueue {
        &self.inner.own
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

    /// Asks for the topology to be declared again now: something found a queue, binding or
    /// exchange missing (a message returned unrouted, a channel error, a consumer cancelled).
    pub fn heal(&self) {
        self.inner.heal.notify_one();
    }

    /// The nodes this broker connects to.
    pub fn nodes(&self) -> &Nodes {
        &self.inner.nodes
    }

    /// Keeps a connection up until `stop`, then closes it. Fails only before the first
    /// connection, when every node refused it in a way waiting cannot fix (see the module).
    pub async fn run(&self, stop: CancellationToken) -> Result<(), Misconfigured> {
        let mut backoff = Backoff::reconnect();
        // The node to try first: the first listed, then the one after the node just lost.
        let mut next = 0;
        let mut connected_once = false;
        while !stop.is_cancelled() {
            match self.open_any(next).await {
                Ok((index, link)) => {
                    backoff.reset();
                    connected_once = true;
                    next = index + 1;
                    tracing::info!(exchange = %self.inner.topology.exchange, node = %link.node, "connected to RabbitMQ");
                    self.inner.link.send_replace(Some(link.clone()));
                    if self.keep(&link, &stop).await {
                        self.inner.link.send_replace(None);
                        close(&link, "service stopping").await;
                        return Ok(());
                    }
                    self.inner.link.send_replace(None);
                    tracing::warn!(node = %link.node, "lost the RabbitMQ connection; reconnecting");
                    // Consumers subscribed on this connection end with it and resubscribe
                    // on the next link; nothing keeps it open.
                    close(&link, "replaced").await;
                }
                Err(Unusable {
                    last,
                    misconfigured,
                }) => {
                    if misconfigured && !connected_once {
                        return Err(Misconfigured(last));
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %last, retry_in = ?delay, "cannot connect to RabbitMQ or declare the topology");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.cancelled() => return Ok(()),
                    }
                }
            }
        }
        Ok(())
    }

    /// Holds `link` until it dies (false) or `stop` (true), declaring the topology again
    /// every [`HEAL_EVERY`] and whenever [`Broker::heal`] asks — once any block has cleared:
    /// a blocked connection sends nothing.
    async fn keep(&self, link: &Link, stop: &CancellationToken) -> bool {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return true,
                _ = link.closed() => return false,
                _ = self.inner.heal.notified() => {}
                _ = tokio::time::sleep(HEAL_EVERY) => {}
            }
            tokio::select! {
                _ = stop.cancelled() => return true,
                _ = link.unblocked() => {}
            }
            self.redeclare(link).await;
        }
    }

    /// Declares the topology again on a channel of its own (a declaration that fails closes
    /// its channel, never the publisher's). Time blocked by an alarm does not count.
    async fn redeclare(&self, link: &Link) {
        let declared = link
            .within(OPEN_TIMEOUT, async {
                let channel = link.connection.create_channel().await?;
                self.inner
                    .topology
                    .declare(&channel, &self.inner.own)
                    .await?;
                channel.close(200, "topology declared".into()).await
            })
            .await;
        match declared {
            Ok(Ok(())) => tracing::debug!("topology declared again"),
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot declare the topology again; trying later")
            }
            Err(_) => tracing::warn!("declaring the topology again timed out; trying later"),
        }
    }
}

/// The published language's layout has no queue for this service: the service and its
/// contract crate disagree (a code error, not a setting).
#[derive(Debug, thiserror::Error)]
#[error("the broker layout has no queue that {0} consumes from")]
pub struct NotInLayout(pub &'static str);

/// Closes the link's connection, giving up after [`CLOSE_TIMEOUT`].
async fn close(link: &Link, reason: &str) {
    let closing = link.connection.close(200, reason.into());
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
}
