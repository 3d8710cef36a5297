//! Stopping a host in order, each step against a deadline: what takes in work first (so
//! in-flight work finishes and is acked), then the outbox relay (so it drains), then the
//! broker connection, then the pool.

use sqlx::PgPool;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

/// Shutdown must finish within this (plus [`POOL_CLOSE_GRACE`] and the runtime's
/// `RUNTIME_SHUTDOWN`): well inside an orchestrator's grace period, whatever the links do.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(9);
/// How long closing the pool may take past the budget.
const POOL_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A task that runs until its own token is cancelled, not the service's: it must outlive
/// the intake to finish what the intake left.
pub(super) struct Stoppable {
    pub task: JoinHandle<()>,
    pub stop: CancellationToken,
}

/// The tasks of a running host, grouped by when they stop.
pub(super) struct Running {
    /// HTTP, the consumer and the workers: they watch the service's shutdown token.
    pub intake: Vec<JoinHandle<()>>,
    pub relay: Stoppable,
    pub broker: Stoppable,
}

impl Running {
    /// Once the service's shutdown token is cancelled: waits for each group in turn,
    /// aborting what misses its deadline, then closes the pool.
    pub async fn stop(mut self, pool: &PgPool) {
        let deadline = Instant::now() + SHUTDOWN_BUDGET;
        if !finish_by(deadline - Duration::from_secs(3), &mut self.intake).await {
            tracing::warn!("in-flight work did not finish in time; RabbitMQ will redeliver it");
        }
        self.relay.stop.cancel();
        if !finish_by(deadline - Duration::from_secs(1), &mut [self.relay.task]).await {
            tracing::warn!(
                "the outbox relay did not stop in time; its events go out after the restart"
            );
        }
        self.broker.stop.cancel();
        finish_by(deadline, &mut [self.broker.task]).await;
        // Waits for checked-out connections to come back, which a query stuck on a dead
        // link never does; past the budget the process exits and the sockets close with it.
        if timeout_at(deadline + POOL_CLOSE_GRACE, pool.close())
            .await
            .is_err()
        {
            tracing::warn!(
                "database connections still busy at the end of the budget; dropping them"
            );
        }
    }
}

/// Waits until `deadline` for the tasks to end, then aborts the rest (work that was
/// already past its last chance to finish). True if all ended by themselves.
async fn finish_by(deadline: Instant, tasks: &mut [JoinHandle<()>]) -> bool {
    let all = async {
        for task in tasks.iter_mut() {
            let _ = task.await;
        }
    };
    let finished = timeout_at(deadline, all).await.is_ok();
    for task in tasks.iter() {
        task.abort();
    }
    finished
}
