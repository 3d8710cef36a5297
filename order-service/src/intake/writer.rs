//! The writer task: takes the waiting requests, drops those whose caller gave up, and
//! writes the rest as one batch — retried after a deadlock or serialization failure,
//! and written one request at a time when the batch fails otherwise, so one bad request
//! does not fail its neighbours.

use super::batch::write_once;
use super::failure::Failure;
use super::{Answer, Placed, Request};
use common::store::Store;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Orders written in one transaction at most.
const MAX_BATCH: usize = 128;
/// Tries of a batch that hit a deadlock or a serialization failure.
const MAX_TRIES: u32 = 4;

pub(super) async fn write_loop(store: Store, mut requests: mpsc::Receiver<Request>) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        let mut batch = claim(&mut waiting);
        if batch.is_empty() {
            continue;
        }
        metrics::histogram!("intake_batch_size").record(batch.len() as f64);
        // The same order on every replica, so concurrent batches never wait on each
        // other's idempotency keys in opposite orders (a deadlock). The unique index is on
        // (customer, key), so that is the order.
        batch.sort_by(|a, b| {
            (a.order.customer_id().as_str(), &a.idempotency_key)
                .cmp(&(b.order.customer_id().as_str(), &b.idempotency_key))
        });
        let answers = write_isolated(&store, &batch).await;
        for (request, answer) in batch.into_iter().zip(answers) {
            if let Ok(Placed::Created(_)) = answer {
                // Counted at once, so the bound holds between two counts too; a repeat or
                // a failure gives its place back (when the request is dropped).
                request.place.keep();
            }
            let _ = request.reply.send(answer);
        }
    }
}

/// The requests that may still be written: their caller is listening and the time limit
/// has not answered them. Claiming them means the time limit now waits for our answer.
fn claim(waiting: &mut Vec<Request>) -> Vec<Request> {
    waiting
        .drain(..)
        .filter(|request| {
            let claimed = !request.reply.is_closed() && request.budget.commit();
            if !claimed {
                tracing::info!(
                    customer_id = %request.order.customer_id(),
                    "order not written: its caller gave up before it was taken"
                );
                metrics::counter!("intake_abandoned_total").increment(1);
            }
            claimed
        })
        .collect()
}

/// Writes the batch; a failure that is not the database's (or the link's) is isolated by
/// writing each request alone, so only the request that causes it fails.
async fn write_isolated(store: &Store, batch: &[Request]) -> Vec<Answer> {
    match write_retrying(store, batch).await {
        Ok(answers) => answers,
        Err(Failure::Retry(error) | Failure::NotWritten(error))
            if batch.len() > 1 && !common::db::is_unreachable(&error) =>
        {
            tracing::warn!(%error, orders = batch.len(), "a batch of new orders failed; writing them one by one");
            let mut answers = Vec::with_capacity(batch.len());
            for request in batch {
                let mut one = Box::pin(write_isolated(store, std::slice::from_ref(request))).await;
                answers.push(one.pop().expect("one answer per request"));
            }
            answers
        }
        Err(failure) => {
            tracing::warn!(?failure, orders = batch.len(), "new orders not written");
            let answer = failure.answer();
            batch.iter().map(|_| Err(answer.clone())).collect()
        }
    }
}

/// [`write_once`], again after a deadlock or serialization failure.
async fn write_retrying(store: &Store, batch: &[Request]) -> Result<Vec<Answer>, Failure> {
    let mut tries = 0;
    loop {
        tries += 1;
        match write_once(store, batch).await {
            Err(Failure::Retry(error)) if tries < MAX_TRIES => {
                tracing::info!(%error, tries, orders = batch.len(), "retrying a batch of new orders");
                metrics::counter!("intake_retries_total").increment(1);
                let jitter = (5 + Uuid::new_v4().as_u128() % 20) as u64 * u64::from(tries);
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            other => return other,
        }
    }
}
