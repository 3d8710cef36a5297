//! The whole start of a service that is only its API over the store and its consumer —
//! no workers, nothing to add to `/ready` — so such a service's `startup` is one call.

use super::{Host, StartupError};
use crate::config::CommonConfig;
use crate::consumer::MessageHandler;
use crate::store::Store;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

impl Host {
    /// Builds the host and serves `api` (made from the store) and `handler` until
    /// `shutdown` is cancelled.
    pub async fn serve<H: MessageHandler>(
        config: CommonConfig,
        migrator: &Migrator,
        shutdown: CancellationToken,
        api: impl FnOnce(Store) -> OpenApiRouter,
        handler: H,
    ) -> Result<(), StartupError> {
        let host = Host::build(config, migrator, shutdown).await?;
        let api = api(host.store.clone());
        host.run(api, handler, Vec::new()).await
    }
}
