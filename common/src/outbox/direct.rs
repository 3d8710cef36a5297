//! Publishing right after commit: the task that committed events sends them at once, so a
//! saga step costs no relay round trip (no poll, no `SELECT … FOR UPDATE`, no transaction
//! of its own). The confirms are awaited in the background; confirmed rows are handed to
//! the relay, which deletes them in bulk. Whatever goes wrong (no link, a failed send, a
//! negative or missing confirm) leaves the rows where they are and tells the relay to
//! publish them now, so the relay stays the one path that recovers.
//!
//! At most [`MAX_IN_FLIGHT`] publishing tasks run at once; a commit beyond that, or while
//! a resource alarm blocks the connection, leaves its rows to the relay, which sends them
//! in batches once it can. A batch waits for RabbitMQ at most [`BROKER_TIMEOUT`] of time
//! the connection is not blocked: a silent link is given up, a blocked one never is.

use super::row::OutgoingEvent;
use super::{Signals, count_published, lock};
use crate::amqp::broker::{Broker, Link};
use crate::amqp::publish::{Message, PublishError};
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// How long one batch may wait for RabbitMQ, publishes and confirms together. A working
/// broker confirms in milliseconds; this leaves room for a busy one.
pub(super) const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishing tasks that may run at once. They take turns on one channel, so more would
/// only wait longer; a commit beyond them is sent by the relay, in batches.
pub(crate) const MAX_IN_FLIGHT: usize = 256;

/// What the publishing tasks hand to the relay.
#[derive(Debug, Default)]
pub(crate) struct Handoff {
    /// Events RabbitMQ confirmed, whose rows are not deleted yet.
    confirmed: Mutex<Vec<Uuid>>,
    /// Rung when `confirmed` gains ids.
    pub(super) confirmed_bell: Notify,
    /// Set when a publish failed: the relay then sends at once every row written up to
    /// this moment, however young (not later ones: those are being sent right now).
    sweep: Mutex<Option<DateTime<Utc>>>,
    /// Batches still waiting for their confirms, so a stopping relay can wait for them.
    pub(super) awaiting: TaskTracker,
}

impl Handoff {
    /// Takes the confirmed ids collected so far.
    pub(super) fn take_confirmed(&self) -> Vec<Uuid> {
        std::mem::take(&mut *lock(&self.confirmed))
    }

    /// Gives back ids whose rows could not be deleted, for the next try.
    pub(super) fn give_back(&self, ids: Vec<Uuid>) {
        lock(&self.confirmed).extend(ids);
    }

    /// Up to when rows must be sent at once, if a publish failed since the last call.
    pub(super) fn take_sweep(&self) -> Option<DateTime<Utc>> {
        lock(&self.sweep).take()
    }

    fn confirm(&self, ids: impl IntoIterator<Item = Uuid>) {
        lock(&self.confirmed).extend(ids);
        self.confirmed_bell.notify_one();
    }
}

/// Sends committed events at once; see the module doc.
#[derive(Clone)]
pub(crate) struct Publisher {
    broker: Broker,
    signals: Signals,
    /// One permit per publishing task ([`MAX_IN_FLIGHT`]).
    in_flight: Arc<Semaphore>,
}

impl Publisher {
    pub(crate) fn new(broker: Broker, signals: Signals) -> Self {
        Self {
            broker,
            signals,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// Publishes `rows`, which have just been committed, without waiting for anything.
    pub(crate) fn publish_committed(&self, rows: Vec<OutgoingEvent>) {
        let Some(link) = self.broker.current() else {
            return self.signals.leave_to_relay();
        };
        if link.is_blocked() {
            // Nothing goes out before the alarm clears; the relay sends the rows then.
            metrics::counter!("outbox_left_to_relay_total", "reason" => "blocked").increment(1);
            return self.signals.leave_to_relay();
        }
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            metrics::counter!("outbox_left_to_relay_total", "reason" => "busy").increment(1);
            return self.signals.leave_to_relay();
        };
        let publisher = self.clone();
        self.signals.handoff.awaiting.spawn(async move {
            publisher.publish(link, rows).await;
            drop(permit);
            publisher.report_in_flight();
        });
        self.report_in_flight();
    }

    /// `outbox_publishes_in_flight`: the publishing tasks running now.
    fn report_in_flight(&self) {
        let running = MAX_IN_FLIGHT - self.in_flight.available_permits();
        metrics::gauge!("outbox_publishes_in_flight").set(running as f64);
    }

    async fn publish(&self, link: Link, rows: Vec<OutgoingEvent>) {
        let health = self.signals.health.clone();
        let sent = {
            let _waiting = health.waiting();
            link.within(BROKER_TIMEOUT, send_all(&self.broker, &link, &rows))
                .await
        };
        match sent {
            Ok(Ok(())) => {
                count_published(rows.iter().map(|row| &row.event_type));
                self.signals
                    .handoff
                    .confirm(rows.iter().map(|row| row.event_id));
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, events = rows.len(), "publishing committed events failed; the outbox relay sends them");
                self.signals.leave_to_relay();
            }
            Err(_) => {
                tracing::warn!(
                    events = rows.len(),
                    timeout = ?BROKER_TIMEOUT,
                    "no confirms from RabbitMQ in time (not blocked); gave up on the broker link and left the events to the outbox relay"
                );
                abandon(&link);
                self.signals.leave_to_relay();
            }
        }
    }
}

impl Signals {
    /// Asks the relay to send every row now: a publish failed or could not start.
    pub(crate) fn leave_to_relay(&self) {
        *lock(&self.handoff.sweep) = Some(Utc::now());
        self.bell.notify_one();
    }
}

/// Sends every event, then waits for all their confirms (one batch, see [`crate::amqp::publish`]).
pub(super) async fn send_all(
    broker: &Broker,
    link: &Link,
    events: &[OutgoingEvent],
) -> Result<(), PublishError> {
    let exchange = &broker.topology().exchange;
    let app_id = broker.name();
    let messages: Vec<Message> = events
        .iter()
        .map(|event| Message {
            exchange,
            routing_key: &event.routing_key,
            payload: &event.payload,
            properties: event.properties(app_id),
        })
        .collect();
    link.publisher.publish(&messages).await?;
    for event in events {
        tracing::info!(
            order_id = %event.order_id,
            event_type = %event.event_type,
            message_id = %event.event_id,
            routing_key = %event.routing_key,
            "published {}", event.event_type
        );
    }
    Ok(())
}

/// Gives up on a link that stopped answering: closing marks its connection as closing at
/// once, so the broker supervisor opens a fresh one and consumers resubscribe. The close
/// handshake itself may never be answered, so it runs out in the background.
pub(super) fn abandon(link: &Link) {
    let connection = link.connection.clone();
    tokio::spawn(async move {
        let close = connection.close(200, "publisher stopped answering".into());
        let _ = tokio::time::timeout(BROKER_TIMEOUT, close).await;
    });
}
