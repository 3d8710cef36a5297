//! Wires notification-service together; `main` starts it through [`run`].

use crate::handlers::NotificationHandler;
use crate::http::{AppState, router};
use common::config::CommonConfig;
use common::host::{Host, StartupError};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations/notification");

/// Runs notification-service until `shutdown` is cancelled.
pub async fn run(config: CommonConfig, shutdown: CancellationToken) -> Result<(), StartupError> {
    let api = |store| router(AppState { store });
    Host::serve(config, &MIGRATOR, shutdown, api, NotificationHandler).await
}
