//! Group commit for new orders. `POST /api/orders` hands its validated order to the
//! intake, which writes whatever orders are waiting — one at low load, dozens under load —
//! in one transaction: one insert for the orders, one for their `OrderCreated` events, one
//! commit. When the queue in front of it is full, or more than `MAX_PENDING_ORDERS` orders
//! are `PENDING` (CONTRACT §9), the POST answers 503 with `Retry-After` at once instead of
//! piling up work.
//!
//! A 5xx means nothing was created (CONTRACT §9):
//! - a request is *claimed* ([`Budget::commit`]) before it goes into a transaction; one
//!   whose caller is gone, or that the request time limit already answered 503, is never
//!   written. A claimed request is answered by the intake, not cut off by the time limit;
//! - everything before `COMMIT` is bounded by [`WRITE_TIMEOUT`]; failing there is a known
//!   "not written" (503 or, for a fault of one request, its own error);
//! - a `COMMIT` without an answer is *in doubt*: the intake ends that backend and looks the
//!   orders up, and answers what the database says.
//!
//! One failing request does not fail its neighbours: keys are inserted in sorted order (two
//! replicas never wait on each other's keys in opposite orders), deadlocks and
//! serialization failures are retried, and any other error is isolated by writing the
//! batch one request at a time.

use crate::domain::NewOrder;
use crate::repo::{self, Insertion, OrderRow, TimelineEntry};
use chrono::{DateTime, Utc};
use common::events::{Envelope, Event, OrderCreated};
use common::http::ApiError;
use common::http::timeout::Budget;
use common::store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Orders written in one transaction at most.
const MAX_BATCH: usize = 128;
/// Orders that may wait for the intake; past this, POSTs are turned away with 503.
const QUEUE_LENGTH: usize = 2048;
/// Everything before `COMMIT` must finish within this, or the batch is given up unwritten.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A `COMMIT` not answered within this is in doubt and gets looked up.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Tries of a batch that hit a deadlock or a serialization failure.
const MAX_TRIES: u32 = 4;
/// How often the number of `PENDING` orders is counted for load shedding.
const PENDING_RECOUNT: Duration = Duration::from_millis(250);

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
    /// `PENDING` orders at the last count (every [`PENDING_RECOUNT`]), plus those
    /// accepted since.
    pending: Arc<AtomicI64>,
    max_pending: i64,
}

struct Request {
    order: NewOrder,
    idempotency_key: Option<String>,
    /// The POST's span: its `OrderCreated` joins the caller's trace.
    span: tracing::Span,
    /// Shared with the request time limit: claimed before the request is written.
    budget: Budget,
    reply: oneshot::Sender<Answer>,
}

type Answer = Result<Placed, ApiError>;

impl Intake {
    /// Starts the writer (it stops when every handle is dropped) and the counter of
    /// `PENDING` orders (it stops with `stop`).
    pub fn start(store: Store, max_pending: i64, stop: CancellationToken) -> Self {
        let (queue, requests) = mpsc::channel(QUEUE_LENGTH);
        let pending = Arc::new(AtomicI64::new(0));
        tokio::spawn(count_pending(store.clone(), pending.clone(), stop));
        tokio::spawn(write_loop(store, requests));
        Self {
            queue,
            pending,
            max_pending,
        }
    }

    pub async fn place(
        &self,
        order: NewOrder,
        idempotency_key: Option<String>,
        budget: Budget,
    ) -> Answer {
        let pending = self.pending.load(Ordering::Relaxed);
        if pending >= self.max_pending {
            metrics::counter!("intake_shed_total").increment(1);
            return Err(ApiError::Unavailable(format!(
                "{pending} orders are waiting to finish (MAX_PENDING_ORDERS is {}); retry shortly",
                self.max_pending
            )));
        }
        let (reply, answer) = oneshot::channel();
        let request = Request {
            order,
            idempotency_key,
            span: tracing::Span::current(),
            budget,
            reply,
        };
        self.queue.try_send(request).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => ApiError::Unavailable(
                "too many orders are waiting to be written; retry shortly".into(),
            ),
            mpsc::error::TrySendError::Closed(_) => {
                ApiError::Unavailable("the service is stopping".into())
            }
        })?;
        let answer = answer
            .await
            .map_err(|_| ApiError::Unavailable("the service is stopping".into()))?;
        if answer.is_ok() {
            // Counted at once, so the bound holds between two recounts too.
            self.pending.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }
}

/// Keeps `pending` near the number of `PENDING` orders (a small partial index).
async fn count_pending(store: Store, pending: Arc<AtomicI64>, stop: CancellationToken) {
    loop {
        let counted = timeout(
            WRITE_TIMEOUT,
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM orders WHERE status = 'PENDING'")
                .fetch_one(store.pool()),
        )
        .await;
        if let Ok(Ok(count)) = counted {
            pending.store(count, Ordering::Relaxed);
            metrics::gauge!("orders_pending").set(count as f64);
        }
        tokio::select! {
            _ = tokio::time::sleep(PENDING_RECOUNT) => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn write_loop(store: Store, mut requests: mpsc::Receiver<Request>) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        let mut batch = claim(&mut waiting);
        if batch.is_empty() {
            continue;
        }
        metrics::histogram!("intake_batch_size").record(batch.len() as f64);
        // The same order on every replica, so concurrent batches never wait on each
        // other's idempotency keys in opposite orders (a deadlock).
        batch.sort_by(|a, b| a.idempotency_key.cmp(&b.idempotency_key));
        let answers = write_isolated(&store, &batch).await;
        for (request, answer) in batch.into_iter().zip(answers) {
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
                    customer_id = %request.order.customer_id,
                    "order not written: its caller gave up before it was taken"
                );
                metrics::counter!("intake_abandoned_total").increment(1);
            }
            claimed
        })
        .collect()
}

/// How a write went wrong.
#[derive(Debug)]
enum Failure {
    /// Nothing was committed; trying again may work (deadlock, serialization failure).
    Retry(sqlx::Error),
    /// Nothing was committed.
    NotWritten(ApiError),
    /// The database did not answer in time; nothing was committed.
    TimedOut,
}

/// Writes the batch; a failure that is not the database's (or the link's) is isolated by
/// writing each request alone, so only the request that causes it fails.
async fn write_isolated(store: &Store, batch: &[Request]) -> Vec<Answer> {
    match write_retrying(store, batch).await {
        Ok(answers) => answers,
        Err(Failure::Retry(error) | Failure::NotWritten(ApiError::Database(error)))
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
            let (unavailable, why) = match failure {
                Failure::TimedOut => (
                    true,
                    "the database did not answer in time; nothing was written, try again"
                        .to_owned(),
                ),
                Failure::Retry(error) | Failure::NotWritten(ApiError::Database(error))
                    if common::db::is_unreachable(&error) =>
                {
                    (
                        true,
                        "the database is unavailable; nothing was written, try again shortly"
                            .to_owned(),
                    )
                }
                Failure::NotWritten(other @ ApiError::Unavailable(_)) => (true, other.to_string()),
                Failure::Retry(error) | Failure::NotWritten(ApiError::Database(error)) => {
                    (false, error.to_string())
                }
                Failure::NotWritten(other) => (false, other.to_string()),
            };
            batch
                .iter()
                .map(|_| {
                    Err(if unavailable {
                        ApiError::Unavailable(why.clone())
                    } else {
                        ApiError::Internal(why.clone())
                    })
                })
                .collect()
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

/// The backend a transaction runs on and when the transaction began, to end it when its
/// `COMMIT` is in doubt (the start time tells that transaction from a later one).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct Backend {
    pid: i32,
    started: DateTime<Utc>,
}

/// Writes a batch in one transaction; one answer per request, in order.
async fn write_once(store: &Store, batch: &[Request]) -> Result<Vec<Answer>, Failure> {
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

    let prepared = timeout(WRITE_TIMEOUT, async {
        let mut uow = store.begin().await?;
        let backend: Backend = sqlx::query_as("SELECT pg_backend_pid() AS pid, now() AS started")
            .fetch_one(uow.conn())
            .await?;
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
        Ok::<_, sqlx::Error>((uow, backend, written, earlier))
    })
    .await;
    // Dropping the transaction here (on a timeout) rolls it back: `COMMIT` was not sent.
    let (mut uow, backend, written, earlier) = match prepared {
        Err(_) => return Err(Failure::TimedOut),
        Ok(Err(error)) => return Err(classify(error)),
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

    let committed = match timeout(COMMIT_TIMEOUT, uow.commit()).await {
        Ok(Ok(())) => return Ok(answers),
        Ok(Err(error)) if !in_doubt(&error) => return Err(classify(error)),
        Ok(Err(error)) => {
            tracing::warn!(%error, "COMMIT of new orders got no answer; looking them up");
            resolve(store, backend, written.keys().copied().collect()).await
        }
        Err(_) => {
            tracing::warn!(timeout = ?COMMIT_TIMEOUT, "COMMIT of new orders took too long; looking them up");
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

/// Sorts a database error: retry, or not written.
fn classify(error: sqlx::Error) -> Failure {
    let retry = matches!(&error, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("40P01" | "40001")));
    if retry {
        Failure::Retry(error)
    } else {
        Failure::NotWritten(ApiError::Database(error))
    }
}

/// Whether a failed `COMMIT` may have committed anyway: the server's error answer means
/// it did not; a lost link (or a server going away mid-commit) leaves it open.
fn in_doubt(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => true,
    }
}

/// Settles a `COMMIT` in doubt: ends the backend that ran it (a transaction not yet
/// committed then rolls back, so the answer cannot change afterwards), waits until it is
/// gone, and asks whether the orders exist. Tries until the database answers: the caller
/// is held rather than told something that may be false.
async fn resolve(store: &Store, backend: Backend, ids: Vec<Uuid>) -> bool {
    if ids.is_empty() {
        return true;
    }
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = timeout(WRITE_TIMEOUT, async {
            let mut conn = store.pool().acquire().await?;
            sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(backend.pid)
                .execute(&mut *conn)
                .await?;
            loop {
                let alive: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND xact_start = $2)",
                )
                .bind(backend.pid)
                .bind(backend.started)
                .fetch_one(&mut *conn)
                .await?;
                if !alive {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let found: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_one(&mut *conn)
                .await?;
            Ok::<_, sqlx::Error>(found > 0)
        })
        .await;
        match attempt {
            Ok(Ok(committed)) => {
                tracing::info!(committed, orders = ids.len(), "settled a COMMIT in doubt");
                return committed;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, retry_in = ?delay, "cannot settle a COMMIT in doubt yet")
            }
            Err(_) => tracing::warn!(retry_in = ?delay, "cannot settle a COMMIT in doubt yet"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    //! The in-doubt path against a real PostgreSQL (`TEST_POSTGRES_URL`), in a database of
    //! its own: a transaction whose `COMMIT` never arrives is ended and reads as not written;
    //! one that committed reads as written.

    use super::*;
    use sqlx::Connection;

    async fn scratch_store() -> (Store, String) {
        let server = std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let url = format!("{server}/intake_{}", Uuid::new_v4().simple());
        let pool = common::db::prepare(
            &url,
            4,
            &crate::startup::MIGRATOR,
            &CancellationToken::new(),
        )
        .await
        .expect("a scratch database");
        (Store::new(pool), url)
    }

    async fn drop_database(store: Store, url: &str) {
        store.pool().close().await;
        let (server, name) = url.rsplit_once('/').unwrap();
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }

    async fn insert_in(conn: &mut sqlx::PgConnection, id: Uuid) -> Backend {
        let backend: Backend = sqlx::query_as("SELECT pg_backend_pid() AS pid, now() AS started")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO orders (id, customer_id, items, total_cents, status, timeline)
             VALUES ($1, 'c', '[]', 100, 'PENDING', '[]')",
        )
        .bind(id)
        .execute(&mut *conn)
        .await
        .unwrap();
        backend
    }

    #[tokio::test]
    async fn a_commit_in_doubt_is_settled_by_what_the_database_holds() {
        let (store, url) = scratch_store().await;

        // Never committed: the transaction is still open when it is settled.
        let mut open = store.pool().acquire().await.unwrap().detach();
        sqlx::query("BEGIN").execute(&mut open).await.unwrap();
        let stuck = Uuid::now_v7();
        let backend = insert_in(&mut open, stuck).await;
        assert!(!resolve(&store, backend, vec![stuck]).await);
        // Its backend is gone: a late COMMIT cannot write it any more.
        assert!(sqlx::query("COMMIT").execute(&mut open).await.is_err());
        let found: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE id = $1")
            .bind(stuck)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(found, 0);

        // Committed, but its answer was lost.
        let mut conn = store.pool().acquire().await.unwrap().detach();
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        let written = Uuid::now_v7();
        let backend = insert_in(&mut conn, written).await;
        sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
        assert!(resolve(&store, backend, vec![written]).await);

        drop_database(store, &url).await;
    }
}
