//! Group commit for new orders. `POST /api/orders` hands its validated order to the
//! intake, which writes whatever orders are waiting — one at low load, dozens under load —
//! in one transaction: one insert for the orders, one for their `OrderCreated` events, one
//! commit. When the queue in front of it is full the POST answers 503 with `Retry-After`
//! instead of piling up work.

use crate::domain::NewOrder;
use crate::repo::{self, Insertion, OrderRow, TimelineEntry};
use chrono::Utc;
use common::events::{Envelope, Event, OrderCreated};
use common::http::ApiError;
use common::store::Store;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Orders written in one transaction at most.
const MAX_BATCH: usize = 128;
/// A write unfinished this long after its oldest request arrived is abandoned (rolled
/// back) and answered 503, before the HTTP time limit (10 s) answers for it.
const WRITE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(8);
/// Orders that may wait for the intake; past this, POSTs are turned away with 503.
const QUEUE_LENGTH: usize = 2048;

/// What happened to a placed order.
pub enum Placed {
    /// Written now.
    Created(OrderRow),
    /// Its idempotency key was used before, with the same body: the order it created.
    Repeated(OrderRow),
}

/// The handle POST handlers use; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    queue: mpsc::Sender<Request>,
}

struct Request {
    order: NewOrder,
    idempotency_key: Option<String>,
    reply: oneshot::Sender<Result<Placed, ApiError>>,
    received: tokio::time::Instant,
}

impl Intake {
    /// Starts the writer; it stops when every handle is dropped.
    pub fn start(store: Store) -> Self {
        let (queue, requests) = mpsc::channel(QUEUE_LENGTH);
        tokio::spawn(write_loop(store, requests));
        Self { queue }
    }

    pub async fn place(
        &self,
        order: NewOrder,
        idempotency_key: Option<String>,
    ) -> Result<Placed, ApiError> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            order,
            idempotency_key,
            reply,
            received: tokio::time::Instant::now(),
        };
        self.queue.try_send(request).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => ApiError::Unavailable(
                "too many orders are waiting to be written; retry shortly".into(),
            ),
            mpsc::error::TrySendError::Closed(_) => {
                ApiError::Unavailable("the service is stopping".into())
            }
        })?;
        answer
            .await
            .map_err(|_| ApiError::Unavailable("the service is stopping".into()))?
    }
}

async fn write_loop(store: Store, mut requests: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // A client that has already been answered (503 after the HTTP time limit) must
        // not get its order written behind its back (CONTRACT §9).
        batch.retain(|request| !request.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        metrics::histogram!("intake_batch_size").record(batch.len() as f64);
        // The write must end before the HTTP time limit of the oldest request in it.
        let oldest = batch.iter().map(|r| r.received).min().expect("not empty");
        let written = tokio::time::timeout_at(oldest + WRITE_DEADLINE, write(&store, &batch))
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut));
        match written {
            Ok(answers) => {
                for (request, answer) in batch.drain(..).zip(answers) {
                    let _ = request.reply.send(answer);
                }
            }
            Err(error) => {
                tracing::warn!(%error, orders = batch.len(), "could not write new orders");
                let unreachable = common::db::is_unreachable(&error);
                for request in batch.drain(..) {
                    let answer = if unreachable {
                        ApiError::Unavailable(
                            "the database is unavailable; try again shortly".into(),
                        )
                    } else {
                        ApiError::Internal(error.to_string())
                    };
                    let _ = request.reply.send(Err(answer));
                }
            }
        }
    }
}

/// Writes a batch in one transaction; one answer per request, in order.
async fn write(
    store: &Store,
    batch: &[Request],
) -> Result<Vec<Result<Placed, ApiError>>, sqlx::Error> {
    let created_at = Utc::now();
    let planned: Vec<(Uuid, Uuid)> = batch
        .iter()
        .map(|_| (Uuid::now_v7(), Uuid::now_v7()))
        .collect();
    let insertions: Vec<Insertion> = batch
        .iter()
        .zip(&planned)
        .map(|(request, (order_id, event_id))| Insertion {
            id: *order_id,
            order: &request.order,
            idempotency_key: request.idempotency_key.as_deref(),
            created: TimelineEntry::planned("OrderCreated", *event_id, created_at),
        })
        .collect();

    let mut uow = store.begin().await?;
    let written: HashMap<Uuid, OrderRow> = repo::insert_all(uow.conn(), &insertions)
        .await?
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
    let reused_keys: Vec<&str> = insertions
        .iter()
        .filter(|i| !written.contains_key(&i.id))
        .filter_map(|i| i.idempotency_key)
        .collect();
    let earlier: HashMap<String, OrderRow> = if reused_keys.is_empty() {
        HashMap::new()
    } else {
        repo::find_by_idempotency_keys(uow.conn(), &reused_keys)
            .await?
            .into_iter()
            .filter_map(|row| Some((row.idempotency_key.clone()?, row)))
            .collect()
    };

    let mut answers = Vec::with_capacity(batch.len());
    for (request, (order_id, event_id)) in batch.iter().zip(&planned) {
        if let Some(row) = written.get(order_id) {
            let created = Event::OrderCreated(OrderCreated {
                order_id: row.id,
                customer_id: row.customer_id.clone(),
                items: row.items.0.clone(),
                total_amount: row.total(),
            });
            uow.publish_envelope(
                Envelope {
                    event_id: *event_id,
                    event: created,
                    timestamp: created_at,
                },
                None,
            );
            answers.push(Ok(Placed::Created(row.clone())));
            continue;
        }
        let key = request.idempotency_key.as_deref().unwrap_or_default();
        answers.push(match earlier.get(key) {
            Some(row) if row.matches(&request.order) => Ok(Placed::Repeated(row.clone())),
            Some(_) => Err(ApiError::Conflict(
                "Idempotency-Key was already used with a different request body".into(),
            )),
            None => Err(ApiError::Conflict(
                "Idempotency-Key is in use; retry".into(),
            )),
        });
    }
    uow.commit().await?;
    Ok(answers)
}
