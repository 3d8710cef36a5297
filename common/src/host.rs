//! Starting and stopping a service: everything between `main` and the service's own code.
//!
//! [`Host::build`] prepares the database and binds the HTTP listener; [`Host::run`] starts
//! the broker supervisor, HTTP server, consumer, outbox relay and the service's workers,
//! logs one `ready` line once RabbitMQ is connected, and on shutdown stops in order:
//! HTTP and consumer first (in-flight work finishes and is acked), then the relay drains
//! the outbox, then the broker connection and the pool close — within 10 s.

use crate::amqp::broker::Broker;
use crate::amqp::consumer::{self, MessageHandler};
use crate::amqp::topology::Topology;
use crate::config::CommonConfig;
use crate::db::{self, DbSetupError};
use crate::http::{MAX_BODY_BYTES, ops};
use crate::outbox::Relay;
use crate::store::Store;
use axum::extract::DefaultBodyLimit;
use futures_util::future::BoxFuture;
use sqlx::migrate::Migrator;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;
// Errors are logged where they are mapped to a status (`ApiError`), not again here.
use tower_http::trace::TraceLayer;

/// How long one HTTP request may take before it gets 503 (order-service's intake gives up
/// on a write before this, so such a request is never carried out afterwards).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Shutdown must finish within this.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(9);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A service's shared infrastructure, built before it serves.
pub struct Host {
    pub config: CommonConfig,
    pub store: Store,
    pub broker: Broker,
    listener: TcpListener,
    shutdown: CancellationToken,
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
        };
        let broker = Broker::new(config.amqp_url.clone(), config.service, topology);
        Ok(Self {
            store: Store::new(pool),
            broker,
            listener,
            shutdown,
            config,
        })
    }

    /// The bound HTTP address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The token that stops the service; workers watch it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then stops in order.
    /// `api` is the service's own documented routes; the host adds the operational ones,
    /// `/openapi.json` generated from both, and the browsable `/docs`.
    pub async fn run<H: MessageHandler>(
        self,
        api: OpenApiRouter,
        handler: H,
        workers: Vec<Worker>,
    ) {
        let Host {
            config,
            store,
            broker,
            listener,
            shutdown,
        } = self;
        let http_addr = listener.local_addr().ok();
        let broker_stop = CancellationToken::new();
        let relay_stop = CancellationToken::new();

        let broker_task = tokio::spawn({
            let broker = broker.clone();
            let stop = broker_stop.clone();
            async move { broker.run(stop).await }
        });
        let relay_task =
            tokio::spawn(Relay::new(store.clone(), broker.clone()).run(relay_stop.clone()));
        let consumer_task = tokio::spawn(consumer::run(
            broker.clone(),
            store.clone(),
            Arc::new(handler),
            config.prefetch,
            shutdown.clone(),
        ));
        let (routes, openapi) = api
            .merge(ops::router(ops::OpsState {
                store: store.clone(),
                broker: broker.clone(),
            }))
            .split_for_parts();
        let app = routes
            .merge(SwaggerUi::new("/docs").url("/openapi.json", describe(openapi, config.service)))
            .fallback(no_route)
            .method_not_allowed_fallback(wrong_method)
            .layer(axum::middleware::from_fn(ops::track_requests))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(axum::middleware::from_fn(time_limit))
            .layer(TraceLayer::new_for_http().on_failure(()));
        let http_task = tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .into_future(),
        );
        let mut worker_tasks: Vec<_> = workers.into_iter().map(tokio::spawn).collect();
        worker_tasks.push(tokio::spawn(crate::store::prune_inbox(
            store.clone(),
            shutdown.clone(),
        )));

        if broker.connected(&shutdown).await.is_some() {
            tracing::info!(
                service = config.service.name(),
                http_addr = %http_addr.map(|a| a.to_string()).unwrap_or_default(),
                exchange = %config.exchange,
                "ready"
            );
        }
        shutdown.cancelled().await;
        tracing::info!("stopping: finishing in-flight work");

        let deadline = Instant::now() + SHUTDOWN_BUDGET;
        let intake = async {
            let _ = http_task.await;
            let _ = consumer_task.await;
            for task in worker_tasks {
                let _ = task.await;
            }
        };
        if timeout_at(deadline - Duration::from_secs(3), intake)
            .await
            .is_err()
        {
            tracing::warn!("in-flight work did not finish in time; RabbitMQ will redeliver it");
        }
        relay_stop.cancel();
        let _ = timeout_at(deadline - Duration::from_secs(1), relay_task).await;
        broker_stop.cancel();
        let _ = timeout_at(deadline, broker_task).await;
        store.pool().close().await;
        tracing::info!("stopped");
    }
}

/// Titles the generated OpenAPI document.
fn describe(mut openapi: OpenApi, service: crate::Service) -> OpenApi {
    openapi.info.title = service.name().to_owned();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    openapi.info.description = Some(
        match service {
            crate::Service::Order => "Orders: where each saga starts and ends.",
            crate::Service::Inventory => "Stock and reservations.",
            crate::Service::Payment => "Simulated payments, one per order.",
            crate::Service::Notification => "Notifications sent for final events.",
        }
        .to_owned(),
    );
    // utoipa fills these from its own crate metadata otherwise.
    openapi.info.license = None;
    openapi.info.contact = None;
    openapi
}

/// A service's configuration: its own settings plus the common ones.
pub trait ServiceConfig: Sized {
    fn from_vars(vars: &crate::config::Vars) -> Result<Self, crate::config::ConfigError>;
    fn common(&self) -> &CommonConfig;
}

/// The body of every service's `main`: read the configuration (exit 2 naming the bad
/// variable), set up logging, run until SIGTERM or SIGINT, exit 0 after a clean stop.
pub fn main<C, F, Fut>(run: F) -> std::process::ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), StartupError>>,
{
    let config = match C::from_vars(&crate::config::Vars::from_env()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("configuration error: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    crate::telemetry::init(config.common());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        match run(config, shutdown).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "failed to start");
                std::process::ExitCode::FAILURE
            }
        }
    })
}

/// Cancels `token` on the first SIGTERM or SIGINT.
pub async fn cancel_on_signal(token: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
    token.cancel();
}

/// A request that takes longer than [`REQUEST_TIMEOUT`] gets 503 with `Retry-After` and a
/// `detail`, like every other error, instead of an empty body.
async fn time_limit(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => crate::http::ApiError::Unavailable(format!(
            "no answer within {} s; try again shortly",
            REQUEST_TIMEOUT.as_secs()
        ))
        .into_response(),
    }
}

/// A path no route serves: 404 with a `detail`, like every other 4xx.
async fn no_route(uri: axum::http::Uri) -> crate::http::ApiError {
    crate::http::ApiError::NotFound(format!("no route {}", uri.path()))
}

/// A route that does not take this method: 405 with a `detail`.
async fn wrong_method(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let detail = format!("{} does not take {method}", uri.path());
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(serde_json::json!({ "detail": detail })),
    )
        .into_response()
}
