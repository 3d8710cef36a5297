//! The count of `PENDING` orders that load shedding compares with `MAX_PENDING_ORDERS`
//! (CONTRACT §9), kept fresh in the background so a POST never waits for it.

use super::WRITE_TIMEOUT;
use common::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// How often the number of `PENDING` orders is counted.
const PENDING_RECOUNT: Duration = Duration::from_millis(250);

/// Keeps `pending` near the number of `PENDING` orders (a small partial index).
pub(super) async fn count_pending(store: Store, pending: Arc<AtomicI64>, stop: CancellationToken) {
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
