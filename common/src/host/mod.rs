//! Starting and stopping a service: everything between `main` and the service's own code.
//!
//! [`Host::build`] prepares the database and binds the HTTP listener; [`Host::run`] starts
//! the broker supervisor, HTTP server, consumer, outbox relay and the service's workers,
//! logs one `ready` line once RabbitMQ is connected, and on shutdown stops in order:
//! HTTP and consumer first (in-flight work finishes and is acked), then the relay drains
//! the outbox, then the broker connection and the pool close — within 11 s whatever the
//! links do: each step has a deadline, and what misses it is aborted.
//!
//! # Layout
//! - `error`: [`StartupError`], and the check that a handler's kinds are its queue's.
//! - `app`: the HTTP application — routes, fallbacks, layers, the OpenAPI document.
//! - `start`: spawning the broker, relay, HTTP server and workers; the `ready` line.
//! - `stop`: stopping them in order, each step against a deadline.
//! - `process`: the process around it — configuration, logging, signals, exit code.
//! - `serve`: [`Host::serve`], the whole start of a service with no workers.

mod app;
mod error;
mod process;
mod serve;
mod start;
mod stop;

pub use error::StartupError;
pub use process::{ServiceConfig, main};

use crate::amqp::broker::Broker;
use crate::amqp::topology::Topology;
use crate::auth::{AuthSetting, Authentication, Authenticator};
use crate::config::CommonConfig;
use crate::consumer::{self, MessageHandler};
use crate::db;
use crate::http::ops;
use crate::store::Store;
use futures_util::future::BoxFuture;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

/// A service's shared infrastructure, built before it serves.
pub struct Host {
    pub config: CommonConfig,
    pub store: Store,
    pub broker: Broker,
    listener: TcpListener,
    shutdown: CancellationToken,
    ready_report: Option<ops::ReadyReport>,
    /// Checks bearer JWTs when authentication is on (CONTRACT §12).
    auth: Option<Authenticator>,
}

/// One line at start saying whether the API needs a token; a `WARN` when it does not.
fn log_authentication(setting: &AuthSetting) {
    match setting {
        AuthSetting::Unconfigured => tracing::warn!(
            "authentication is off: the API is open to anyone who can reach it \
             (set AUTH_ISSUER, and AUTH_JWKS_URL or AUTH_PUBLIC_KEY unless its discovery \
             document names the keys, to require a JWT)"
        ),
        AuthSetting::Disabled { ignored } => tracing::warn!(
            ?ignored,
            "authentication is off (AUTH_DISABLED=true): the API is open to anyone who can \
             reach it"
        ),
        AuthSetting::On(auth) => tracing::info!(
            issuer = %auth.issuer,
            audience = %auth.audience,
            keys = ?auth.keys_description(),
            "authentication is on: the API needs a bearer JWT"
        ),
    }
}

/// A background task of the service's own, started with the host and stopped with it.
pub type Worker = BoxFuture<'static, ()>;

impl Host {
    /// Creates and migrates the database (waiting for PostgreSQL if needed) and binds the
    /// HTTP address. `shutdown` ends everything; cancel it to stop the service.
    pub async fn build(
        config: CommonConfig,
        migrator: &Migrator,
        shutdown: CancellationToken,
    ) -> Result<Self, StartupError> {
        crate::metrics::handle();
        let pool = db::prepare(
            &config.database_url,
            config.db_pool_size,
            migrator,
            &shutdown,
        )
        .await?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| StartupError::Listen {
                addr: config.http_addr,
                source,
            })?;
        let topology = Topology {
            exchange: config.exchange.clone(),
            retry_delays: config.retry_delays.clone(),
            queue_type: config.amqp_queue_type,
            layout: (config.service.layout)(&config.exchange),
        };
        let broker = Broker::with_nodes(config.amqp_nodes.clone(), config.service, topology)?;
        let auth = config.auth.config().map(Authenticator::new);
        log_authentication(&config.auth);
        Ok(Self {
            auth,
            store: Store::new(pool).publishing_through(broker.clone()),
            broker,
            listener,
            shutdown,
            config,
            ready_report: None,
        })
    }

    /// Adds the service's own fields to the body of a ready `/ready` (see
    /// [`ops::ReadyReport`]).
    pub fn report_on_ready(&mut self, report: ops::ReadyReport) {
        self.ready_report = Some(report);
    }

    /// The token that stops the service; workers watch it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Whether authentication is on (the checker of tokens), for a service that forwards
    /// a caller's token to another.
    pub fn authentication(&self) -> Authentication {
        Authentication(self.auth.clone())
    }

    /// Serves until the shutdown token is cancelled, then stops in order.
    /// `api` is the service's own documented routes; the host adds the operational ones,
    /// `/openapi.json` generated from both, and the browsable `/docs`. Fails only when
    /// RabbitMQ cannot be used as configured before it was ever reached.
    pub async fn run<H: MessageHandler>(
        self,
        api: OpenApiRouter,
        handler: H,
        workers: Vec<Worker>,
    ) -> Result<(), StartupError> {
        let Host {
            config,
            store,
            broker,
            listener,
            shutdown,
            ready_report,
            auth,
        } = self;
        error::check_subscriptions::<H>(broker.own_queue())?;
        let http_addr = listener.local_addr().ok();

        let (broker_task, misconfigured) = start::broker(&broker);
        let relay_task = start::relay(&store, &broker);
        let consumer_task = tokio::spawn(consumer::run(
            broker.clone(),
            store.clone(),
            Arc::new(handler),
            config.prefetch,
            shutdown.clone(),
        ));
        let ops = ops::OpsState {
            store: store.clone(),
            broker: broker.clone(),
            ready_report,
            auth: auth.clone(),
        };
        let app = app::router(api, ops, &config, auth.clone());
        let http_task = start::http(listener, app, &shutdown);
        let worker_tasks = start::workers(workers, &store, auth.as_ref(), &shutdown);

        let failure =
            start::announce_ready(&broker, &config, http_addr, &shutdown, misconfigured).await;
        shutdown.cancelled().await;
        tracing::info!("stopping: finishing in-flight work");

        let mut intake = vec![http_task, consumer_task];
        intake.extend(worker_tasks);
        let running = stop::Running {
            intake,
            relay: relay_task,
            broker: broker_task,
        };
        running.stop(store.pool()).await;
        tracing::info!("stopped");
        failure.map_or(Ok(()), Err)
    }
}
