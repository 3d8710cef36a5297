//! Wires payment-service together; `main` starts it through [`run`].

use crate::breaker::{Breaker, replicas};
use crate::config::Config;
use crate::handlers::PaymentHandler;
use crate::http::{AppState, router};
use crate::payments::InlineSimulator;
use crate::provider::Provider;
use crate::provider::http::HttpProvider;
use crate::provider::simulator::Simulator;
use crate::worker::{PaymentWorker, Policy};
use common::host::{Host, StartupError};
use common::text_enum::TextEnum;
use sqlx::migrate::Migrator;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations/payment");

/// Runs payment-service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartupError> {
    let mut host = Host::build(config.common.clone(), &MIGRATOR, shutdown).await?;
    let store = host.store.clone();
    let inline = config.provider_url.is_none().then_some(InlineSimulator {
        success_rate: config.success_rate,
        seed: config.seed,
        max_attempts: config.max_attempts,
        retry_base: config.retry_base,
    });
    let (provider, breaker) = match &config.provider_url {
        // Building a client fails only if the TLS backend cannot start: nothing to go on with.
        Some(url) => (
            Provider::Http(
                HttpProvider::new(url, config.provider_timeout)
                    .expect("the HTTP client for the payment provider builds"),
            ),
            Breaker::new(config.breaker),
        ),
        None => (
            Provider::Simulator(Simulator {
                pool: store.pool().clone(),
                success_rate: config.success_rate,
                seed: config.seed,
            }),
            Breaker::off(),
        ),
    };
    let ready_breaker = breaker.clone();
    host.report_on_ready(Arc::new(move || {
        let state = ready_breaker.snapshot().state.as_str().to_owned();
        BTreeMap::from([("provider".to_owned(), state)])
    }));
    let report = replicas::keep_reporting(
        store.pool().clone(),
        breaker.clone(),
        Uuid::new_v4(),
        host.shutdown_token(),
    );
    let worker = Arc::new(PaymentWorker::new(
        store.clone(),
        Arc::new(provider),
        breaker,
        Policy {
            max_attempts: config.max_attempts,
            retry_base: config.retry_base,
            // A claimed row outlives its provider call; past this, another worker takes it.
            lease: config.provider_timeout + Duration::from_secs(5),
        },
    ));
    let handler = PaymentHandler {
        inline,
        worker: worker.clone(),
    };
    let worker_task = Box::pin(worker.run(host.shutdown_token()));
    host.run(
        router(AppState { store }),
        handler,
        vec![worker_task, Box::pin(report)],
    )
    .await
}
