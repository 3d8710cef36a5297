//! A hop's consumer, shaped like common's: a channel of its own with a prefetch of 64;
//! whatever deliveries are already waiting when one arrives (up to 32) form a batch, and
//! at most two batches are applied at once, so under load deliveries gather and the next
//! batch takes many of them. A batch is one transaction — the inbox claim (one insert for
//! all its message ids), the hop's rows, its outbox rows, `COMMIT` — after which its events
//! go to the service's publisher and each delivery is acked on its own.

use super::failure::Failure;
use super::hops::Hop;
use super::message::Incoming;
use super::outbox;
use super::service::Service;
use super::tracker::Tracker;
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

/// Deliveries a consumer holds unacked at most (common's `DEFAULT_PREFETCH`).
const PREFETCH: u16 = 64;
/// Deliveries applied in one transaction at most (common's `MAX_BATCH`).
const MAX_BATCH: usize = 32;
/// Batches applied at the same time (common's `CONCURRENT_BATCHES`).
const CONCURRENT_BATCHES: usize = 2;

/// Everything a hop's batches need.
#[derive(Clone)]
pub struct Consumer {
    pub hop: Hop,
    pub queue: String,
    pub service: Arc<Service>,
    pub tracker: Arc<Tracker>,
    pub failure: Failure,
}

impl Consumer {
    /// Consumes the hop's queue until the task is aborted (which aborts its batches too).
    pub async fn run(self) {
        if let Err(error) = self.consume().await {
            self.failure
                .fail(format!("the {} hop stopped: {error}", self.hop.name()));
        }
    }

    async fn consume(&self) -> Result<(), String> {
        let channel = self
            .service
            .connection
            .create_channel()
            .await
            .map_err(|e| e.to_string())?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut deliveries = channel
            .basic_consume(
                self.queue.as_str().into(),
                format!("loadgen-calibration-{}", self.hop.name()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let slots = Arc::new(Semaphore::new(CONCURRENT_BATCHES));
        let mut batches = JoinSet::new();
        loop {
            let slot = slots.clone().acquire_owned().await.expect("never closed");
            let first = match deliveries.next().await {
                Some(delivery) => delivery.map_err(|e| e.to_string())?,
                None => return Err("the broker ended the subscription".into()),
            };
            let mut batch = vec![first];
            // Whatever else is already here joins the batch; nothing waits for more.
            while batch.len() < MAX_BATCH {
                match deliveries.next().now_or_never() {
                    Some(Some(Ok(delivery))) => batch.push(delivery),
                    _ => break,
                }
            }
            let consumer = self.clone();
            batches.spawn(async move {
                if let Err(error) = consumer.apply(batch).await {
                    consumer
                        .failure
                        .fail(format!("the {} hop failed: {error}", consumer.hop.name()));
                }
                drop(slot);
            });
            while batches.try_join_next().is_some() {}
        }
    }

    /// One batch: applied and committed, its events handed to the publisher, its
    /// deliveries acked.
    async fn apply(&self, batch: Vec<Delivery>) -> Result<(), String> {
        let messages = batch
            .iter()
            .map(Incoming::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let (new, outgoing) = self
            .in_transaction(&messages)
            .await
            .map_err(|e| e.to_string())?;
        let committed_at = Instant::now();
        if self.hop == Hop::Notification {
            for message in new {
                self.tracker.notified(message.event.order_id, committed_at);
            }
        }
        if !outgoing.is_empty() {
            self.service.publisher.send(outgoing);
        }
        for delivery in &batch {
            delivery
                .ack(BasicAckOptions::default())
                .await
                .map_err(|e| format!("acking: {e}"))?;
        }
        Ok(())
    }

    /// The batch's transaction; the messages it applied (those not seen before) and the
    /// events to publish now that it has committed.
    async fn in_transaction<'m>(
        &self,
        messages: &'m [Incoming],
    ) -> Result<(Vec<&'m Incoming>, Vec<super::message::Outgoing>), sqlx::Error> {
        let mut tx = self.service.pool.begin().await?;
        let ids: Vec<Uuid> = messages.iter().map(|m| m.event.event_id).collect();
        let mut unclaimed: HashSet<Uuid> = sqlx::query_scalar(
            "INSERT INTO inbox (message_id) SELECT DISTINCT unnest($1::uuid[])
             ON CONFLICT DO NOTHING RETURNING message_id",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        // Each claimed id once, even if a message came twice.
        let new: Vec<&Incoming> = messages
            .iter()
            .filter(|m| unclaimed.remove(&m.event.event_id))
            .collect();
        let outgoing = if new.is_empty() {
            Vec::new()
        } else {
            self.hop.apply(&mut tx, &new).await?
        };
        if !outgoing.is_empty() {
            outbox::write(&mut tx, &outgoing).await?;
        }
        tx.commit().await?;
        Ok((new, outgoing))
    }
}
