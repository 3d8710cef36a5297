//! The outbox, as common's is used: a commit writes its events in one multi-row insert;
//! once RabbitMQ has confirmed them, their rows are deleted in bulk.

use super::failure::Failure;
use super::message::Outgoing;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use uuid::Uuid;

/// How long confirmed ids gather before one `DELETE` removes them all (the relay's
/// `DELETE_GATHER`).
const GATHER: Duration = Duration::from_millis(50);

/// Writes `events` into the outbox, in the committing transaction.
pub async fn write(conn: &mut PgConnection, events: &[Outgoing]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (event_id, event_type, routing_key, order_id, causation_id, occurred_at, payload)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::uuid[],
                              $6::text[]::timestamptz[], $7::bytea[])",
    )
    .bind(events.iter().map(|e| e.event.event_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.kind.name()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.kind.routing_key()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.event.order_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.causation_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.event.timestamp.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.body.as_slice()).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a service's confirmed outbox rows, as the outbox relay does: the ids confirmed
/// within [`GATHER`] of the first go in one `DELETE`.
#[derive(Clone)]
pub struct Cleaner {
    confirmed: mpsc::UnboundedSender<Vec<Uuid>>,
}

impl Cleaner {
    pub fn start(pool: PgPool, failure: &Failure, tasks: &mut JoinSet<()>) -> Self {
        let (confirmed, ids) = mpsc::unbounded_channel();
        tasks.spawn(clean(pool, ids, failure.clone()));
        Self { confirmed }
    }

    /// These events are confirmed; their rows may go.
    pub fn confirmed(&self, ids: Vec<Uuid>) {
        // Closed only when the run is stopping.
        let _ = self.confirmed.send(ids);
    }
}

async fn clean(pool: PgPool, mut confirmed: mpsc::UnboundedReceiver<Vec<Uuid>>, failure: Failure) {
    while let Some(mut ids) = confirmed.recv().await {
        tokio::time::sleep(GATHER).await;
        while let Ok(more) = confirmed.try_recv() {
            ids.extend(more);
        }
        let deleted = sqlx::query("DELETE FROM outbox WHERE event_id = ANY($1)")
            .bind(&ids)
            .execute(&pool)
            .await;
        if let Err(error) = deleted {
            return failure.fail(format!("deleting confirmed outbox rows: {error}"));
        }
    }
}
