//! Wires payment-service together; `main` and the tests both start it through [`run`].

use crate::config::Config;
use crate::gateway::Gateway;
use crate::handlers::PaymentHandler;
use crate::http::{AppState, router};
use common::host::{Host, StartupError};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations/payment");

/// Runs payment-service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartupError> {
    let host = Host::build(config.common.clone(), &MIGRATOR, shutdown).await?;
    let store = host.store.clone();
    let handler = PaymentHandler {
        gateway: Gateway {
            success_rate: config.success_rate,
            seed: config.seed,
        },
        max_attempts: config.max_attempts,
        retry_base: config.retry_base,
    };
    host.run(router(AppState { store }), handler, Vec::new())
        .await;
    Ok(())
}
