//! Publishing with publisher confirms: a message counts as sent only once RabbitMQ has
//! written it (persistent, to a durable queue) and said so. Every publish is `mandatory`:
//! a message no queue takes (a binding or queue deleted by hand) comes back as
//! `basic.return` and counts as a failed publish, instead of vanishing.
//!
//! Everyone in a process publishes through the link's one [`ConfirmChannel`], and batches
//! take turns on it: a batch is sent and all its confirms are awaited before the next one
//! starts. That is what makes every confirm belong to its own message. lapin numbers a
//! publish (its delivery tag) and queues its frames in two steps, so two tasks on two
//! threads could swap numbers, while RabbitMQ numbers messages in the order their frames
//! arrive: one task's ack would then be credited to another's message. And lapin attaches a
//! `basic.return` to whichever confirm completes next; with one batch at a time, that is a
//! confirm of the same batch, which then fails as a whole. Under load a batch holds the
//! events of many commits, so taking turns costs one confirm round trip per batch.
//!
//! A negative confirm or a channel error retires the channel: the next batch goes out on a
//! fresh one (a channel that saw queues fail over can keep refusing; a fresh one starts
//! clean). A returned message or a channel error also asks the broker supervisor to declare
//! the topology again ([`super::broker::Broker::heal`]).

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Connection};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard, Notify};

/// How long retiring a channel may take; a dead one may never answer its close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a publish did not count.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("RabbitMQ is not connected")]
    NotConnected,
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ refused the message (negative confirm)")]
    Nacked,
    #[error("no queue takes messages routed {routing_key:?} on {exchange:?} ({reply})")]
    Returned {
        exchange: String,
        routing_key: String,
        reply: String,
    },
}

/// One message to publish.
pub struct Message<'a> {
    /// `""` sends straight to the queue named by `routing_key`.
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub payload: &'a [u8],
    pub properties: BasicProperties,
}

/// The link's publishing channel (confirm mode), shared by every publisher of the process;
/// see the module doc.
pub struct ConfirmChannel {
    connection: Arc<Connection>,
    /// The channel, opened on first use and dropped when retired. Holding the lock is a
    /// batch's turn.
    channel: Mutex<Option<Channel>>,
    /// Rung when the topology may need declaring again.
    heal: Arc<Notify>,
}

impl ConfirmChannel {
    /// A publisher on `connection` whose first channel, already in confirm mode, is `channel`.
    pub fn new(connection: Arc<Connection>, channel: Channel, heal: Arc<Notify>) -> Self {
        Self {
            connection,
            channel: Mutex::new(Some(channel)),
            heal,
        }
    }

    /// Whether a batch could go out now: the connection is up (a retired channel is
    /// replaced on the next batch).
    pub(crate) fn is_usable(&self) -> bool {
        self.connection.status().connected()
    }

    /// Publishes `messages` in order and waits for all their confirms; fails if any is
    /// refused or returned. Waits for its turn first. Dropped midway (a caller's timeout),
    /// it retires the channel, whose confirms can no longer be told apart.
    pub async fn publish(&self, messages: &[Message<'_>]) -> Result<(), PublishError> {
        let mut turn = Turn {
            slot: self.channel.lock().await,
            finished: false,
        };
        let channel = match turn.slot.as_ref().filter(|c| c.status().connected()) {
            Some(channel) => channel.clone(),
            None => {
                let channel = self.open().await?;
                *turn.slot = Some(channel.clone());
                channel
            }
        };
        let result = send_and_confirm(&channel, messages).await;
        match &result {
            Ok(()) => {}
            Err(PublishError::Returned { .. }) => self.heal.notify_one(),
            Err(error) => {
                tracing::warn!(%error, "retiring the publishing channel; the next batch goes out on a fresh one");
                if matches!(error, PublishError::Amqp(_)) {
                    // A channel error may mean the exchange or a queue is gone.
                    self.heal.notify_one();
                }
                turn.retire();
            }
        }
        turn.finished = true;
        result
    }

    async fn open(&self) -> Result<Channel, PublishError> {
        if !self.connection.status().connected() {
            return Err(PublishError::NotConnected);
        }
        let channel = self.connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(channel)
    }
}

/// A batch's turn on the channel.
struct Turn<'a> {
    slot: MutexGuard<'a, Option<Channel>>,
    finished: bool,
}

impl Turn<'_> {
    /// Drops the channel; its close runs out in the background.
    fn retire(&mut self) {
        if let Some(channel) = self.slot.take() {
            tokio::spawn(async move {
                let close = channel.close(200, "retired by the publisher".into());
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
            });
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.retire();
        }
    }
}

/// Sends every message (`mandatory`), then waits for every confirm. A message returned
/// unrouted fails the batch, whichever of its confirms lapin attached the return to.
async fn send_and_confirm(channel: &Channel, messages: &[Message<'_>]) -> Result<(), PublishError> {
    let mut confirms = Vec::with_capacity(messages.len());
    for message in messages {
        confirms.push(
            channel
                .basic_publish(
                    message.exchange.into(),
                    message.routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    message.payload,
                    message.properties.clone(),
                )
                .await?,
        );
    }
    let mut nacked = false;
    let mut returned = None;
    for confirm in confirms {
        let confirmation = confirm.await?;
        nacked |= !confirmation.is_ack();
        if let Some(message) = confirmation.take_message() {
            returned.get_or_insert(PublishError::Returned {
                exchange: message.delivery.exchange.to_string(),
                routing_key: message.delivery.routing_key.to_string(),
                reply: message.reply_text.to_string(),
            });
        }
    }
    match (returned, nacked) {
        (Some(returned), _) => Err(returned),
        (None, true) => Err(PublishError::Nacked),
        (None, false) => Ok(()),
    }
}
