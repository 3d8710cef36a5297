//! A live broker connection as the rest of the service sees it: its publisher channel, the
//! node it is on, whether an alarm blocks it ([`super::alarm`]), and subscribing to a queue.

use super::alarm::{Alarm, Flow, TimedOut};
use super::publish::ConfirmChannel;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A live connection with its publisher channel (confirm mode, shared by everyone who
/// publishes in this process, one batch at a time).
#[derive(Clone)]
pub struct Link {
    pub connection: Arc<Connection>,
    pub publisher: Arc<ConfirmChannel>,
    /// `host:port` of the node this connection is on (no credentials).
    pub node: String,
    /// Whether a resource alarm blocks the connection.
    pub alarm: Arc<Alarm>,
}

/// A subscription to one queue on a channel of its own, opened by [`Link::consume`].
pub struct Subscription {
    /// Settles the deliveries and, closed, ends the subscription.
    pub channel: Channel,
    pub deliveries: Consumer,
    /// Cancels the subscription (`basic_cancel`) while the channel stays open.
    pub tag: String,
}

impl Link {
    /// A link over `connection`, whose publisher channel (in confirm mode) is `publisher`.
    pub(crate) fn new(
        connection: Arc<Connection>,
        publisher: ConfirmChannel,
        node: String,
    ) -> Self {
        let alarm = Arc::new(Alarm::watch(&connection, &node));
        Self {
            connection,
            publisher: Arc::new(publisher),
            node,
            alarm,
        }
    }

    pub fn is_open(&self) -> bool {
        self.publisher.is_usable()
    }

    /// Whether a resource alarm blocks the connection right now: nothing sent on it goes
    /// out until the alarm clears.
    pub fn is_blocked(&self) -> bool {
        self.alarm.is_blocked()
    }

    /// Whether the connection is blocked, and since when.
    pub fn flow(&self) -> Flow {
        self.alarm.flow()
    }

    /// Resolves once the connection is not blocked, or is gone.
    pub async fn unblocked(&self) {
        tokio::select! {
            _ = self.alarm.cleared() => {}
            _ = self.closed() => {}
        }
    }

    /// Runs `work` until it ends or `limit` has passed while the connection was not
    /// blocked: a link that stops answering is given up after `limit`, a blocked one waits.
    pub async fn within<F: Future>(&self, limit: Duration, work: F) -> Result<F::Output, TimedOut> {
        self.alarm.within(limit, work).await
    }

    /// Resolves once the link stops working. A dead link can leave a consumer waiting for
    /// deliveries forever; racing this against them tells it to move to the next link.
    pub async fn closed(&self) {
        while self.is_open() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Subscribes to `queue` on a new channel that holds at most `prefetch` unacked
    /// deliveries, under a fresh consumer tag that starts with `tag` (so the management
    /// UI tells who consumes). The one way every consumer in the system opens.
    pub async fn consume(
        &self,
        queue: &str,
        prefetch: u16,
        tag: &str,
    ) -> Result<Subscription, lapin::Error> {
        let channel = self.connection.create_channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let tag = format!("{tag}-{}", uuid::Uuid::new_v4());
        let deliveries = channel
            .basic_consume(
                queue.into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Subscription {
            channel,
            deliveries,
            tag,
        })
    }
}
