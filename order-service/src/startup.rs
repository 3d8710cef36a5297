//! Wires order-service together; `main` starts it through [`run`].

use crate::audit::AuditRecorder;
use crate::config::Config;
use crate::handlers::OrderSaga;
use crate::http::{AppState, router};
use crate::intake::Intake;
use crate::timeout::TimeoutSweeper;
use common::host::{Host, StartupError};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations/order");

/// Runs order-service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartupError> {
    let host = Host::build(config.common.clone(), &MIGRATOR, shutdown).await?;
    let store = host.store.clone();
    let sweeper = TimeoutSweeper {
        store: store.clone(),
        timeout: config.saga_timeout,
    };
    let stop = host.shutdown_token();
    let state = AppState {
        intake: Intake::start(
            store.clone(),
            config.max_pending_orders,
            config.admission_target,
            stop.clone(),
        ),
        store: store.clone(),
        broker: host.broker.clone(),
        http: reqwest::Client::new(),
        inventory_url: config.inventory_url.clone(),
        payment_url: config.payment_url.clone(),
        cancel_window: config.cancel_window,
    };
    let audit = AuditRecorder {
        broker: host.broker.clone(),
        store: store.clone(),
        retention: config.saga_audit_retention,
    };
    let workers: Vec<common::host::Worker> = vec![
        Box::pin(sweeper.run(stop.clone())),
        Box::pin(audit.run(stop)),
    ];
    host.run(router(state), OrderSaga, workers).await
}
