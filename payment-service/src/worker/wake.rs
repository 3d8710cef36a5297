//! Waking the workers: a commit that makes a payment due sends a PostgreSQL `NOTIFY`,
//! which rings every replica's bell; a lost one costs at most a poll.

use super::POLL;
use crate::payments::DUE_CHANNEL;
use common::store::Store;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Rings `bell` on every `NOTIFY` on [`DUE_CHANNEL`] until `stop`. Notifications are only
/// a hint: a lost one costs at most [`POLL`].
pub(super) async fn listen(store: Store, bell: Arc<Notify>, stop: CancellationToken) {
    let work = async {
        loop {
            let mut listener = match PgListener::connect_with(store.pool()).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::debug!(%error, "cannot listen for due payments yet");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            if let Err(error) = listener.listen(DUE_CHANNEL).await {
                tracing::debug!(%error, "cannot listen for due payments yet");
                tokio::time::sleep(POLL).await;
                continue;
            }
            loop {
                match listener.recv().await {
                    Ok(_) => bell.notify_one(),
                    Err(error) => {
                        tracing::debug!(%error, "lost the due-payment notifications; listening again");
                        tokio::time::sleep(POLL).await;
                        break;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = work => {}
        _ = stop.cancelled() => {}
    }
}
