//! Admission by the number of `PENDING` orders (CONTRACT §9): a place is reserved before a
//! request is queued and given back unless the request creates an order, so the bound
//! holds exactly within this replica, however many POSTs arrive at once. The bound follows
//! the time sagas take ([`super::limit`]), `MAX_PENDING_ORDERS` at most. The count of
//! `PENDING` orders, and their median age, is read from the database fifty times a second (it
//! falls as sagas end, on any replica); orders created since that count are added to it.
//!
//! A POST that finds no place waits for one (at most [`ADMISSION_WAIT`]) before it is
//! answered 503: a client that keeps posting (ignoring `Retry-After`) then gets its order
//! in as places free, instead of spinning on 503s that cost the server CPU its sagas need
//! (BENCHMARKS.md "Where the speed went"). Waiting POSTs are admitted first come, first
//! served: a place that frees goes to the one that has waited longest, and a POST that
//! arrives while others wait queues behind them instead of racing them for it.
//!
//! Each replica compares the shared count plus its own new orders with the bound, so with
//! `n` replicas the others' orders since the last count are unseen: up to `n − 1` times the
//! places free at that count can be taken past the bound, until the next count (at most
//! [`PENDING_RECOUNT`] later). `bench/overshoot.sh` measures it.

use super::WRITE_TIMEOUT;
use super::limit::Limit;
use common::store::Store;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// How often the number of `PENDING` orders is counted: well within [`ADMISSION_WAIT`], so a
/// POST that waits for a place sees the places freed since the last count. (At 100 ms, with
/// the bound at half a second of work, clients that honour a 1 s `Retry-After` left the
/// pipeline idle: loadgen's closed loop did 190 orders/s instead of 414.)
const PENDING_RECOUNT: Duration = Duration::from_millis(20);
/// How long a POST that finds no place waits for the next count before its 503.
pub(super) const ADMISSION_WAIT: Duration = Duration::from_millis(40);

/// The places this replica knows to be taken, and how many there are.
#[derive(Debug)]
struct Counts {
    /// The bound on the places.
    limit: Limit,
    /// `PENDING` orders at the last count.
    counted: i64,
    /// Orders this replica created since that count began (some may be in it too: when in
    /// doubt, a place counts as taken).
    created_since: i64,
    /// Orders created by this replica in all, to tell which came after a count began.
    created_total: i64,
    /// Places reserved by requests on their way in.
    reserved: i64,
    /// POSTs waiting for a place, longest first; each gets its place through its sender.
    waiting: VecDeque<oneshot::Sender<Place>>,
}

impl Counts {
    fn taken(&self) -> i64 {
        self.counted + self.created_since + self.reserved
    }

    fn full(&self) -> bool {
        self.taken() >= self.limit.bound()
    }

    fn refusal(&self) -> Refusal {
        let taken = self.taken();
        Refusal {
            taken,
            bound: self.limit.bound(),
            ceiling: self.limit.ceiling(),
            retry_after: self.limit.retry_after(taken),
        }
    }
}

/// Why a POST found no place: how many were taken of how many, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refusal {
    pub taken: i64,
    pub bound: i64,
    /// `MAX_PENDING_ORDERS`.
    pub ceiling: i64,
    pub retry_after: Duration,
}

/// The bound and the places taken; shared by the intake handle and the recount task.
#[derive(Debug)]
pub(super) struct Admission {
    counts: Mutex<Counts>,
}

/// A reserved place: given back when dropped, unless [`Place::keep`] says the request
/// created an order.
#[derive(Debug)]
pub(super) struct Place {
    admission: Arc<Admission>,
    created: bool,
}

impl Place {
    /// The request created an order: the place stays taken until the order ends.
    pub(super) fn keep(mut self) {
        self.created = true;
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.reserved -= 1;
        if self.created {
            counts.created_since += 1;
            counts.created_total += 1;
        }
        drop(counts);
        if !self.created {
            // The place is free again: the longest waiting POST takes it.
            self.admission.admit_waiting();
        }
    }
}

impl Admission {
    /// Admission under at most `ceiling` places, adapting to `target` saga time if set.
    pub(super) fn new(ceiling: i64, target: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            counts: Mutex::new(Counts {
                limit: Limit::new(ceiling, target),
                counted: 0,
                created_since: 0,
                created_total: 0,
                reserved: 0,
                waiting: VecDeque::new(),
            }),
        })
    }

    /// Reserves a place without waiting (the tests' newcomer), or says how many are taken
    /// when none is left or POSTs are already waiting for one.
    #[cfg(test)]
    fn reserve(self: &Arc<Self>) -> Result<Place, i64> {
        let mut counts = self.lock();
        if counts.full() || counts.waiting.iter().any(|waiter| !waiter.is_closed()) {
            return Err(counts.taken());
        }
        counts.reserved += 1;
        Ok(self.place())
    }

    /// Reserves a place, waiting up to `wait` for one to free, behind the POSTs that
    /// waited first; else says why not.
    pub(super) async fn reserve_within(self: &Arc<Self>, wait: Duration) -> Result<Place, Refusal> {
        let admitted = {
            let mut counts = self.lock();
            counts.waiting.retain(|waiter| !waiter.is_closed());
            if !counts.full() && counts.waiting.is_empty() {
                counts.reserved += 1;
                return Ok(self.place());
            }
            let (sender, admitted) = oneshot::channel();
            counts.waiting.push_back(sender);
            admitted
        };
        // Given up, a place sent at this very moment is dropped with the channel (before the
        // lock below is taken), which gives it back.
        let admitted = timeout(wait, admitted).await;
        match admitted {
            Ok(Ok(place)) => Ok(place),
            _ => Err(self.lock().refusal()),
        }
    }

    /// Hands the free places to the POSTs that have waited longest.
    fn admit_waiting(self: &Arc<Self>) {
        let mut admitted = Vec::new();
        {
            let mut counts = self.lock();
            while !counts.full() {
                let Some(waiter) = counts.waiting.pop_front() else {
                    break;
                };
                if waiter.is_closed() {
                    continue;
                }
                counts.reserved += 1;
                admitted.push(waiter);
            }
        }
        // Outside the lock: a waiter that gave up meanwhile drops its place, which locks.
        for waiter in admitted {
            let _ = waiter.send(self.place());
        }
    }

    fn place(self: &Arc<Self>) -> Place {
        Place {
            admission: self.clone(),
            created: false,
        }
    }

    /// Keeps the count of `PENDING` orders and their median age fresh until `stop` (a
    /// small partial index), and the bound with them.
    pub(super) async fn recount(self: Arc<Self>, store: Store, stop: CancellationToken) {
        loop {
            let began_at = self.lock().created_total;
            let counted = timeout(
                WRITE_TIMEOUT,
                sqlx::query_as::<_, (i64, f64)>(
                    "SELECT count(*), COALESCE(percentile_cont(0.5) WITHIN GROUP
                                (ORDER BY extract(epoch FROM now() - created_at)), 0)::float8
                     FROM orders WHERE status = 'PENDING'",
                )
                .fetch_one(store.pool()),
            )
            .await;
            if let Ok(Ok((count, median_age))) = counted {
                let median_age = Duration::try_from_secs_f64(median_age).unwrap_or_default();
                let bound = self.counted(count, median_age, began_at);
                metrics::gauge!("orders_pending").set(count as f64);
                metrics::gauge!("orders_pending_bound").set(bound as f64);
            }
            tokio::select! {
                _ = tokio::time::sleep(PENDING_RECOUNT) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Takes a count of `count` `PENDING` orders, half of them older than `median_age`,
    /// that began when this replica had created `began_at` orders in all; moves the bound
    /// and admits waiting POSTs to the places freed. Returns the bound.
    fn counted(self: &Arc<Self>, count: i64, median_age: Duration, began_at: i64) -> i64 {
        let mut counts = self.lock();
        counts.counted = count;
        counts.created_since = counts.created_total - began_at;
        counts.limit.observe(count, median_age);
        let bound = counts.limit.bound();
        drop(counts);
        self.admit_waiting();
        bound
    }

    /// The counts stay consistent at every step, so a lock poisoned by a panic elsewhere
    /// is still good.
    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests;
