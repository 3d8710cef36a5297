//! The broker side: one durable topic exchange and durable queues named for the run, bound
//! as the real system binds them for the happy path ([`Hop::bindings`]), and the publisher
//! each service sends its committed events through.

use super::failure::Failure;
use super::hops::Hop;
use super::message::Outgoing;
use super::outbox::Cleaner;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Confirmation, Connection, ExchangeKind, PublisherConfirm};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use uuid::Uuid;

/// The exchange and queues of one run.
#[derive(Debug, Clone)]
pub struct Topology {
    pub exchange: String,
}

impl Topology {
    pub fn queue(&self, hop: Hop) -> String {
        format!("{}.{}", self.exchange, hop.queue())
    }

    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        for hop in Hop::ALL {
            let queue = self.queue(hop);
            channel
                .queue_declare(queue.as_str().into(), durable, FieldTable::default())
                .await?;
            for kind in hop.bindings() {
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        self.exchange.as_str().into(),
                        kind.routing_key().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes the queues (with whatever they still hold) and the exchange.
    pub async fn delete(&self, channel: &Channel) -> Result<(), lapin::Error> {
        for hop in Hop::ALL {
            channel
                .queue_delete(
                    self.queue(hop).as_str().into(),
                    QueueDeleteOptions::default(),
                )
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
