//! The broker side: one durable topic exchange and durable queues named for the run, laid
//! out and bound as the real system's ([`Topology`]), and the publisher each service sends
//! its committed events through.

use super::failure::Failure;
use super::hops::Hop;
use super::message::Outgoing;
use super::outbox::Cleaner;
use common::amqp::topology::{self, QueueType};
use contract::queues;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeleteOptions,
};
use lapin::{Channel, Confirmation, Connection, PublisherConfirm};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use uuid::Uuid;

/// The exchange and queues of one run: the real system's layout from the contract
/// (every service's queue with its bindings and dead-letter queue, and the audit copy),
/// declared by the services' own topology code, so the happy path's 4 publishes fan out to
/// the same 5 deliveries as there.
#[derive(Debug, Clone)]
pub struct Topology {
    pub exchange: String,
}

impl Topology {
    /// The queue `hop` consumes from.
    pub fn queue(&self, hop: Hop) -> String {
        queues::queue(&self.exchange, hop.service().service())
    }

    /// Every queue the run declares.
    pub fn queues(&self) -> Vec<String> {
        let layout = queues::layout(&self.exchange);
        let consumers = layout
            .consumers
            .into_iter()
            .flat_map(|queue| [queue.name, queue.dead_letters]);
        let copies = layout.copies.into_iter().map(|queue| queue.name);
        consumers.chain(copies).collect()
    }

    /// As a service declares it at start, with classic queues and no retry queues (the
    /// happy path never retries).
    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let topology = topology::Topology {
            exchange: self.exchange.clone(),
            retry_delays: Vec::new(),
            queue_type: QueueType::Classic,
            layout: queues::layout(&self.exchange),
        };
        topology.declare_layout(channel).await
    }

    /// Deletes the queues (with whatever they still hold) and the exchange.
    pub async fn delete(&self, channel: &Channel) -> Result<(), lapin::Error> {
        for queue in self.queues() {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await
    }
}

/// A service's publisher: a channel of its own in confirm mode, fed with each commit's
/// events in commit order. Every publish is `mandatory` and persistent, as the services'
/// are. One task publishes, so lapin numbers the messages in the order RabbitMQ receives
/// them and each confirm is its own message's; another awaits the confirms behind it, so a
/// commit's publishes never wait for an earlier commit's confirms (the services' shared
/// channel takes turns instead: a batch waits for the confirms of the one before). Each
/// commit's confirmed events go to the service's outbox [`Cleaner`].
#[derive(Clone)]
pub struct Publisher {
    batches: mpsc::UnboundedSender<Vec<Outgoing>>,
}

/// A commit's published events: their ids and their confirms, in order.
type Sent = (Vec<Uuid>, Vec<PublisherConfirm>);

impl Publisher {
    pub async fn start(
        connection: &Connection,
        exchange: String,
        cleaner: Cleaner,
        failure: &Failure,
        tasks: &mut JoinSet<()>,
    ) -> Result<Self, lapin::Error> {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let (batches, to_publish) = mpsc::unbounded_channel();
        let (sent, to_confirm) = mpsc::unbounded_channel();
        tasks.spawn(publish(
            channel,
            exchange,
            to_publish,
            sent,
            failure.clone(),
        ));
        tasks.spawn(await_confirms(to_confirm, cleaner, failure.clone()));
        Ok(Self { batches })
    }

    /// Publishes `events`, just committed, without waiting for anything.
    pub fn send(&self, events: Vec<Outgoing>) {
        // Closed only when the run is stopping.
        let _ = self.batches.send(events);
    }
}

async fn publish(
    channel: Channel,
    exchange: String,
    mut batches: mpsc::UnboundedReceiver<Vec<Outgoing>>,
    sent: mpsc::UnboundedSender<Sent>,
    failure: Failure,
) {
    let options = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    while let Some(batch) = batches.recv().await {
        let mut confirms = Vec::with_capacity(batch.len());
        for event in &batch {
            let published = channel
                .basic_publish(
                    exchange.as_str().into(),
                    event.kind.routing_key().into(),
                    options,
                    &event.body,
                    event.properties(),
                )
                .await;
            match published {
                Ok(confirm) => confirms.push(confirm),
                Err(error) => {
                    return failure.fail(format!("publishing {}: {error}", event.kind.name()));
                }
            }
        }
        let ids = batch.iter().map(|event| event.event.event_id).collect();
        if sent.send((ids, confirms)).is_err() {
            return;
        }
    }
}

async fn await_confirms(
    mut sent: mpsc::UnboundedReceiver<Sent>,
    cleaner: Cleaner,
    failure: Failure,
) {
    while let Some((ids, confirms)) = sent.recv().await {
        for confirm in confirms {
            match confirm.await {
                Ok(Confirmation::Ack(None)) => {}
                Ok(other) => {
                    return failure.fail(format!(
                        "RabbitMQ did not take a calibration message: {other:?}"
                    ));
                }
                Err(error) => return failure.fail(format!("awaiting a confirm: {error}")),
            }
        }
        cleaner.confirmed(ids);
    }
}
