//! The inbox: the ids of the messages a service has applied, claimed in the transaction that
//! applies them, so a redelivered or duplicated message is recognised and skipped.

use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Records these messages as processed, in one statement, and returns the ids that were
/// not processed before (each once, even if it appears twice). A message left out has
/// its effects committed already, so the caller must do nothing more with it. A
/// concurrent duplicate waits here for the first one's transaction and is left out.
#[tracing::instrument(level = "debug", skip_all, fields(messages = message_ids.len()))]
pub(crate) async fn claim_all(
    conn: &mut PgConnection,
    message_ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO inbox (message_id) SELECT DISTINCT unnest($1::uuid[])
         ON CONFLICT DO NOTHING RETURNING message_id",
    )
    .bind(message_ids)
    .fetch_all(conn)
    .await
}

/// Gives back claims of messages that are not finished yet (they will be applied again).
#[tracing::instrument(level = "debug", skip_all, fields(messages = message_ids.len()))]
pub(crate) async fn release_claims(
    conn: &mut PgConnection,
    message_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    if !message_ids.is_empty() {
        sqlx::query("DELETE FROM inbox WHERE message_id = ANY($1)")
            .bind(message_ids)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// How long processed message ids are kept. Redeliveries come within minutes; past this,
/// the services' state guards alone (each effect happens once per saga) still make
/// a very late duplicate harmless.
pub(crate) const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Deletes inbox entries older than [`RETENTION`] once an hour until `stop`.
pub(crate) async fn prune(pool: PgPool, stop: CancellationToken) {
    loop {
        let pruned =
            sqlx::query("DELETE FROM inbox WHERE processed_at < now() - make_interval(secs => $1)")
                .bind(RETENTION.as_secs_f64())
                .execute(&pool)
                .await;
        match pruned {
            Ok(done) if done.rows_affected() > 0 => {
                tracing::info!(rows = done.rows_affected(), "pruned old inbox entries")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not prune the inbox"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.cancelled() => return,
        }
    }
}
