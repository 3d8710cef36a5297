//! Starting and stopping a service: everything between `main` and the service's own code.
//!
//! [`Host::build`] prepares the database and binds the HTTP listener; [`Host::run`] starts
//! the broker supervisor, HTTP server, consumer, outbox relay and the service's workers,
//! logs one `ready` line once RabbitMQ is connected, and on shutdown stops in order:
//! HTTP and consumer first (in-flight work finishes and is acked), then the relay drains
//! the outbox, then the broker connection and the pool close — within 11 s whatever the
//! links do: each step has a deadline, and what misses it is aborted.

mod process;

pub use process::{ServiceConfig, main};

use crate::amqp::broker::{Broker, Misconfigured, NotInLayout};
use crate::amqp::consumer::{self, MessageHandler};
use crate::amqp::topology::{ConsumerQueue, Topology};
use crate::auth::{AuthSetting, Authentication, Authenticator};
use crate::config::CommonConfig;
use crate::db::{self, DbSetupError};
use crate::event::Kinds;
use crate::http::{AdminAccess, ApiError, MAX_BODY_BYTES, ops, timeout};
use crate::outbox::Relay;
use crate::service::Descriptor;
use crate::store::Store;
use axum::Extension;
use axum::extract::DefaultBodyLimit;
use futures_util::future::BoxFuture;
use sqlx::migrate::Migrator;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;
// Errors are logged where they are mapped to a status (`ApiError`), not again here.
use tower_http::trace::TraceLayer;

/// How long one HTTP request may take before it gets 503 (unless its handler committed to
/// finishing it: see [`timeout::Budget`]).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Shutdown must finish within this (plus [`POOL_CLOSE_GRACE`] and the runtime's
/// `RUNTIME_SHUTDOWN`): well inside an orchestrator's grace period, whatever the links do.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(9);
/// How long closing the pool may take past the budget.
const POOL_CLOSE_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Broker(#[from] Misconfigured),
    #[error(transparent)]
    NotInLayout(#[from] NotInLayout),
    /// The handler's kinds are not what the layout binds its queue to.
    #[error("{service} handles {handled:?} but its queue is bound to {bound:?}")]
    Subscriptions {
        service: &'static str,
        handled: Vec<&'static str>,
        bound: Vec<&'static str>,
    },
}

impl StartupError {
    /// A setting (or a server's certificate) must change before a restart can help: the
    /// process exits with 2, as for a bad variable, rather than 1.
    pub fn is_misconfiguration(&self) -> bool {
        matches!(
            self,
            Self::Database(DbSetupError::Tls { .. }) | Self::Broker(_)
        )
    }
}

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
        check_subscriptions::<H>(broker.own_queue())?;
        let http_addr = listener.local_addr().ok();
        let broker_stop = CancellationToken::new();
        let relay_stop = CancellationToken::new();

        let (misconfigured_tx, mut misconfigured) = tokio::sync::oneshot::channel();
        let broker_task = tokio::spawn({
            let broker = broker.clone();
            let stop = broker_stop.clone();
            async move {
                if let Err(error) = broker.run(stop).await {
                    let _ = misconfigured_tx.send(error);
                }
            }
        });
        let relay = Relay::new(store.pool().clone(), store.outbox().clone(), broker.clone());
        let relay_task = tokio::spawn(relay.run(relay_stop.clone()));
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
                ready_report,
                auth: auth.clone(),
            }))
            .split_for_parts();
        let app = routes
            .merge(SwaggerUi::new("/docs").url("/openapi.json", describe(openapi, &config.service)))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::from_fn(ops::track_requests))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(Extension(AdminAccess(config.admin_token.clone())))
            .layer(Extension(Authentication(auth.clone())))
            .layer(axum::middleware::from_fn_with_state(
                REQUEST_TIMEOUT,
                timeout::limit,
            ))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(crate::trace::http_server_span)
                    .on_failure(()),
            );
        let serve = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .into_future();
        let http_task = tokio::spawn(async move {
            if let Err(error) = serve.await {
                tracing::error!(%error, "the HTTP server failed");
            }
        });
        let mut worker_tasks: Vec<_> = workers.into_iter().map(tokio::spawn).collect();
        worker_tasks.push(tokio::spawn(crate::inbox::prune(
            store.pool().clone(),
            shutdown.clone(),
        )));
        if let Some(auth) = &auth {
            worker_tasks.push(tokio::spawn(auth.keys().clone().run(shutdown.clone())));
        }

        let mut failure = None;
        tokio::select! {
            link = broker.connected(&shutdown) => {
                if link.is_some() {
                    tracing::info!(
                        service = config.service.name,
                        http_addr = %http_addr.map(|a| a.to_string()).unwrap_or_default(),
                        exchange = %config.exchange,
                        rabbitmq_node = %broker.current().map(|link| link.node).unwrap_or_default(),
                        "ready"
                    );
                }
            }
            Ok(error) = &mut misconfigured => {
                failure = Some(StartupError::Broker(error));
                shutdown.cancel();
            }
        }
        shutdown.cancelled().await;
        tracing::info!("stopping: finishing in-flight work");

        let deadline = Instant::now() + SHUTDOWN_BUDGET;
        let mut intake: Vec<JoinHandle<()>> = vec![http_task, consumer_task];
        intake.extend(worker_tasks);
        if !finish_by(deadline - Duration::from_secs(3), &mut intake).await {
            tracing::warn!("in-flight work did not finish in time; RabbitMQ will redeliver it");
        }
        relay_stop.cancel();
        if !finish_by(deadline - Duration::from_secs(1), &mut [relay_task]).await {
            tracing::warn!(
                "the outbox relay did not stop in time; its events go out after the restart"
            );
        }
        broker_stop.cancel();
        finish_by(deadline, &mut [broker_task]).await;
        // Waits for checked-out connections to come back, which a query stuck on a dead
        // link never does; past the budget the process exits and the sockets close with it.
        if timeout_at(deadline + POOL_CLOSE_GRACE, store.pool().close())
            .await
            .is_err()
        {
            tracing::warn!(
                "database connections still busy at the end of the budget; dropping them"
            );
        }
        tracing::info!("stopped");
        failure.map_or(Ok(()), Err)
    }
}

/// The handler's kinds and its queue's bindings come from the same list of the published
/// language (its `consumes` tuple for the service); a service that names another list
/// would be bound to events it does not handle, or miss some it does.
fn check_subscriptions<H: MessageHandler>(own: &ConsumerQueue) -> Result<(), StartupError> {
    let handled = <H::Consumes as Kinds>::ROUTING_KEYS;
    let same = handled.len() == own.bindings.len()
        && handled.iter().all(|key| own.bindings.contains(key))
        && own.bindings.iter().all(|key| handled.contains(key));
    if same {
        return Ok(());
    }
    Err(StartupError::Subscriptions {
        service: own.owner,
        handled: handled.to_vec(),
        bound: own.bindings.to_vec(),
    })
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

/// Unknown paths answer in the same JSON shape as every other error.
async fn not_found() -> ApiError {
    ApiError::NotFound("Not Found".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("Method Not Allowed".into())
}

/// Titles the generated OpenAPI document with the service's name and description.
fn describe(mut openapi: OpenApi, service: &Descriptor) -> OpenApi {
    openapi.info.title = service.name.to_owned();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    openapi.info.description = Some(service.description.to_owned());
    // The admin routes' `security(("admin_token" = []))` refers to this, the API's
    // `security(("bearer" = []))` to the next.
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "A JWT from the OpenID provider (AUTH_ISSUER), for audience AUTH_AUDIENCE; \
                     needed only when authentication is on (AUTH_JWKS_URL or AUTH_PUBLIC_KEY). \
                     Its `sub` is the customer; scope `orders:admin` acts for every customer.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "admin_token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The service's ADMIN_TOKEN"))
                .build(),
        ),
    );
    // utoipa fills these from its own crate metadata otherwise.
    openapi.info.license = None;
    openapi.info.contact = None;
    openapi
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amqp::consumer::{Handle, Handled, HandlerError, Incoming};
    use crate::event::toy::{Started, Stopped, Toy};
    use crate::store::UnitOfWork;

    /// Handles `Started` only.
    struct StartWatcher;

    impl MessageHandler for StartWatcher {
        type Consumes = (Started,);
    }

    impl Handle<Started> for StartWatcher {
        async fn handle(
            &self,
            _: &mut UnitOfWork,
            _: &Started,
            _: &Incoming<Toy>,
        ) -> Result<Handled, HandlerError> {
            Ok(Handled::Done)
        }
    }

    fn queue(bindings: &'static [&'static str]) -> ConsumerQueue {
        ConsumerQueue {
            owner: "watcher",
            name: "things.watcher".into(),
            dead_letters: "things.watcher.dlq".into(),
            bindings,
        }
    }

    #[test]
    fn a_handler_starts_only_on_a_queue_bound_to_exactly_its_kinds() {
        assert!(check_subscriptions::<StartWatcher>(&queue(&["thing.started"])).is_ok());
        let error = check_subscriptions::<StartWatcher>(&queue(&[
            <Started as crate::event::Kind>::ROUTING_KEY,
            <Stopped as crate::event::Kind>::ROUTING_KEY,
        ]))
        .unwrap_err();
        assert!(error.to_string().contains("thing.stopped"), "{error}");
        assert!(check_subscriptions::<StartWatcher>(&queue(&[])).is_err());
    }
}
