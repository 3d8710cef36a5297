//! One batch, one transaction: one insert for the orders, their `OrderCreated` events in
//! the outbox, one commit — each step bounded in time, and a `COMMIT` without an answer
//! settled by asking the database (see [`super::in_doubt`]).

use super::failure::Failure;
use super::in_doubt::{Backend, in_doubt, resolve};
use super::{Answer, COMMIT_TIMEOUT, IntakeError, Placed, Request, WRITE_TIMEOUT};
use crate::repo::{self, CustomerKey, Insertion, OrderRow, TimelineEntry};
use chrono::Utc;
use common::event::Kind;
use common::store::Store;
use contract::OrderId;
use contract::events::{Envelope, Event, OrderCreated};
use std::collections::HashMap;
use tokio::time::timeout;
use uuid::Uuid;

/// Writes a batch in one transaction; one answer per request, in order.
#[tracing::instrument(level = "debug", skip_all, fields(orders = batch.len()))]
pub(super) async fn write_once(store: &Store, batch: &[Request]) -> Result<Vec<Answer>, Failure> {
    let created_at = Utc::now();
    let planned: Vec<(OrderId, Uuid)> = batch
        .iter()
        .map(|_| (OrderId::new(), Uuid::now_v7()))
        .collect();
    let insertions: Vec<Insertion> = batch
        .iter()
        .zip(&planned)
        .map(|(request, (order_id, event_id))| Insertion {
            id: *order_id,
            order: &request.order,
            idempotency_key: request.idempotency_key.as_deref(),
            created: TimelineEntry::planned(OrderCreated::NAME, *event_id, created_at, None),
        })
        .collect();

    let prepared = timeout(WRITE_TIMEOUT, async {
        let mut uow = store.begin().await?;
        let backend = Backend::of(uow.conn()).await?;
        let written: HashMap<OrderId, OrderRow> = repo::insert_all(uow.conn(), &insertions)
            .await?
            .into_iter()
            .map(|row| (row.id, row))
            .collect();
        let reused_keys: Vec<CustomerKey> = insertions
            .iter()
            .filter(|i| !written.contains_key(&i.id))
            .filter_map(|i| i.customer_key())
            .collect();
        let earlier: HashMap<(String, String), OrderRow> = if reused_keys.is_empty() {
            HashMap::new()
        } else {
            repo::find_by_idempotency_keys(uow.conn(), &reused_keys)
                .await?
                .into_iter()
                .filter_map(|row| {
                    Some(((row.customer_id.clone(), row.idempotency_key.clone()?), row))
                })
                .collect()
        };
        Ok::<_, sqlx::Error>((uow, backend, written, earlier))
    })
    .await;
    // Dropping the transaction here (on a timeout) rolls it back: `COMMIT` was not sent.
    let (mut uow, backend, written, earlier) = match prepared {
        Err(_) => return Err(Failure::TimedOut),
        Ok(Err(error)) => return Err(Failure::classify(error)),
        Ok(Ok(prepared)) => prepared,
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
            request.span.in_scope(|| {
                uow.publish_envelope(
                    Envelope {
                        event_id: *event_id,
                        event: created,
                        timestamp: created_at,
                    },
                    None,
                )
            });
            answers.push(Ok(Placed::Created(row.clone())));
            continue;
        }
        let key = (
            request.order.customer_id().as_str().to_owned(),
            request.idempotency_key.clone().unwrap_or_default(),
        );
        answers.push(match earlier.get(&key) {
            Some(row) if row.matches(&request.order) => Ok(Placed::Repeated(row.clone())),
            Some(_) => Err(IntakeError::KeyConflict(
                "Idempotency-Key was already used with a different request body".into(),
            )),
            None => Err(IntakeError::KeyConflict(
                "Idempotency-Key is in use; retry".into(),
            )),
        });
    }

    let commit = uow.commit();
    tokio::pin!(commit);
    let committed = tokio::select! {
        result = &mut commit => match result {
            Ok(()) => return Ok(answers),
            Err(error) if !in_doubt(&error) => return Err(Failure::classify(error)),
            Err(error) => {
                tracing::warn!(%error, "COMMIT of new orders got no answer; looking them up");
                resolve(store, backend, written.keys().copied().collect()).await
            }
        },
        _ = tokio::time::sleep(COMMIT_TIMEOUT) => {
            tracing::warn!(timeout = ?COMMIT_TIMEOUT, "COMMIT of new orders took too long; looking them up");
            // `commit` keeps its connection out of the pool until `resolve` has seen its
            // backend gone, so the backend it ends is never one another transaction reuses.
            resolve(store, backend, written.keys().copied().collect()).await
        }
    };
    if committed {
        // The relay's bell was not rung by the failed commit; its poll picks them up.
        Ok(answers)
    } else {
        Err(Failure::TimedOut)
    }
}
