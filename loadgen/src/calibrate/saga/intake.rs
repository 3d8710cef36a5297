//! The POST, as order-service's intake does it (group commit): whatever orders are waiting
//! (up to 128) are written in one transaction — one insert for the order rows (each with
//! its idempotency key and first timeline entry), one for their `OrderCreated` outbox rows,
//! `COMMIT` — then their events go to the publisher and each caller hears back.

use super::failure::Failure;
use super::message::{Event, Kind, Outgoing};
use super::outbox;
use super::schema::PRODUCT;
use super::service::Service;
use serde_json::json;
use sqlx::types::Json;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Orders written in one transaction at most (the intake's `MAX_BATCH`).
const MAX_BATCH: usize = 128;

/// Places orders; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    requests: mpsc::UnboundedSender<Request>,
}

struct Request {
    order_id: Uuid,
    /// Told once the order is committed.
    written: oneshot::Sender<()>,
}

impl Intake {
    pub fn start(order: Arc<Service>, failure: &Failure, tasks: &mut JoinSet<()>) -> Self {
        let (requests, waiting) = mpsc::unbounded_channel();
        tasks.spawn(write_loop(order, waiting, failure.clone()));
        Self { requests }
    }

    /// Places order `order_id`; returns once it is committed (its `OrderCreated` is then
    /// on its way).
    pub async fn post(&self, order_id: Uuid) -> Result<(), String> {
        let (written, answer) = oneshot::channel();
        self.requests
            .send(Request { order_id, written })
            .map_err(|_| "the intake has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the intake has stopped".to_owned())
    }
}

async fn write_loop(
    order: Arc<Service>,
    mut waiting: mpsc::UnboundedReceiver<Request>,
    failure: Failure,
) {
    while let Some(first) = waiting.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        match write(&order, &batch).await {
            Ok(events) => {
                order.publisher.send(events);
                for request in batch {
                    let _ = request.written.send(());
                }
            }
            Err(error) => return failure.fail(format!("writing orders: {error}")),
        }
    }
}

/// One transaction for the batch's orders and their events.
async fn write(order: &Service, batch: &[Request]) -> Result<Vec<Outgoing>, sqlx::Error> {
    let events: Vec<Outgoing> = batch
        .iter()
        .map(|request| {
            let created = Event::order_created(request.order_id, PRODUCT);
            Outgoing::new(Kind::OrderCreated, created, None)
        })
        .collect();
    let timelines: Vec<Json<serde_json::Value>> = events
        .iter()
        .map(|o| Json(json!([o.event.timeline_entry(contract::Service::Order)])))
        .collect();
    let mut tx = order.pool.begin().await?;
    sqlx::query(
        "INSERT INTO orders (id, customer_id, items, total_cents, status, idempotency_key, timeline)
         SELECT id, customer, item, total, 'PENDING', key, line
         FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::bigint[], $5::text[], $6::jsonb[])
              AS new(id, customer, item, total, key, line)
         ON CONFLICT (customer_id, idempotency_key) DO NOTHING",
    )
    .bind(events.iter().map(|o| o.event.order_id).collect::<Vec<_>>())
    .bind(events.iter().map(|o| o.event.customer_id.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|o| Json(&o.event.items)).collect::<Vec<_>>())
    .bind(events.iter().map(|o| o.event.total_cents()).collect::<Vec<_>>())
    .bind(events.iter().map(|_| Uuid::new_v4().to_string()).collect::<Vec<_>>())
    .bind(&timelines)
    .execute(&mut *tx)
    .await?;
    outbox::write(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(events)
}
