//! Wires notification-service together; `main` starts it through [`run`].

use crate::config::Config;
use crate::handlers::NotificationHandler;
use crate::http::{AppState, router};
use common::host::{Host, StartupError};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations/notification");

/// Runs notification-service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartupError> {
    let host = Host::build(config.common, &MIGRATOR, shutdown).await?;
    let store = host.store.clone();
    host.run(
        router(AppState {
            store: store.clone(),
        }),
        NotificationHandler,
        Vec::new(),
    )
    .await
}
