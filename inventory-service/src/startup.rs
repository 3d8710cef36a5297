//! Wires inventory-service together; `main` starts it through [`run`].

use crate::handlers::InventoryHandler;
use crate::http::{AppState, router};
use common::config::CommonConfig;
use common::host::{Host, StartupError};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations/inventory");

/// Runs inventory-service until `shutdown` is cancelled.
pub async fn run(config: CommonConfig, shutdown: CancellationToken) -> Result<(), StartupError> {
    let api = |store| router(AppState { store });
    Host::serve(config, &MIGRATOR, shutdown, api, InventoryHandler).await
}
