//! A running system for one test: the four service binaries (or some of them, or several
//! replicas) on a fresh exchange and fresh databases, with their logs in
//! `target/test-logs/<stack>/`.

mod builder;
mod cleanup;
mod process;

pub use builder::StackBuilder;
pub use process::{Instance, Starting};

use crate::broker::TestBroker;
use crate::proxy::Proxy;
use ::contract::Service;
use common::amqp::topology::Topology;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// Where the tests find PostgreSQL and RabbitMQ.
pub fn postgres_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The `ADMIN_TOKEN` every test service gets; the API helpers send it.
pub const TEST_ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// Short retry delays so tests that exhaust retries finish quickly.
pub const TEST_RETRY_DELAYS_MS: [u64; 3] = [100, 200, 400];
/// How long a service may take to log `ready`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Set by `scripts/test` once it has built the service binaries for the run, so that each
/// test process (nextest runs one per test) does not ask cargo again: about 0.5 s each, and
/// cargo's build lock taken by every test of the suite.
pub const SERVICES_BUILT_VAR: &str = "SAGA_TESTS_SERVICES_BUILT";

/// Builds the service binaries once per test process, unless the run already did.
pub fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var_os(SERVICES_BUILT_VAR).is_none() {
            devstack::build_services(false).expect("the services build");
        }
    });
}

/// A server a service connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dependency {
    Database,
    Broker,
}

/// Everything one test runs against.
pub struct TestStack {
    /// Names the exchange (and so every queue) and prefixes the databases.
    pub name: String,
    /// The RabbitMQ node or nodes the services use (`AMQP_URL`).
    pub amqp_url: String,
    pub topology: Topology,
    pub broker: TestBroker,
    pub http: reqwest::Client,
    env: Vec<(String, String)>,
    service_env: HashMap<Service, Vec<(String, String)>>,
    instances: HashMap<Service, Vec<Instance>>,
    started: usize,
    log_dir: PathBuf,
    pools: std::sync::Mutex<HashMap<Service, PgPool>>,
    proxies: HashMap<(Service, Dependency), Proxy>,
    /// `available + reserved` each product must add up to (initial stock and restocks).
    pub expected_stock: BTreeMap<String, i64>,
    /// The `message_id`s of the dead letters a test put there on purpose, per service.
    pub expected_dead_letters: HashMap<Service, Vec<String>>,
    /// The RabbitMQ nodes `rabbitmqctl` asks about queues (`-n`, comma-separated, the first
    /// that answers), when not the local one.
    pub rabbitmq_node: Option<String>,
    /// Who the services log in to PostgreSQL as, if not the test's own user.
    database_user: Option<String>,
    /// The PostgreSQL server (a URL without a database): [`postgres_url`] unless the
    /// builder named another.
    postgres: String,
    /// Query parameters the services' `DATABASE_URL` carries (e.g. `sslmode=verify-full…`).
    database_params: Option<String>,
    cleaned: bool,
}

impl TestStack {
    pub fn database_url(&self, service: Service) -> String {
        format!("{}/{}_{}", self.postgres, self.name, service.short_name())
    }

    /// The proxy between `service` and `dependency`, if the builder asked for one.
    pub fn proxy(&self, service: Service, dependency: Dependency) -> &Proxy {
        self.proxies
            .get(&(service, dependency))
            .expect("the stack was built with this proxy")
    }

    /// The URL `service` uses for `dependency`: direct, or through its proxy.
    fn url_for(&self, service: Service, dependency: Dependency) -> String {
        let direct = match (dependency, &self.database_user) {
            (Dependency::Database, None) => self.database_url(service),
            (Dependency::Database, Some(user)) => {
                let url = self.database_url(service);
                let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
                let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                format!("{scheme}://{user}@{host}")
            }
            (Dependency::Broker, _) => self.amqp_url.clone(),
        };
        let direct = match (dependency, &self.database_params) {
            (Dependency::Database, Some(params)) => format!("{direct}?{params}"),
            _ => direct,
        };
        match self.proxies.get(&(service, dependency)) {
            Some(proxy) => proxy.rewrite(&direct),
            None => direct,
        }
    }

    /// A connection pool to a service's database, for checks the APIs do not offer.
    pub async fn db(&self, service: Service) -> PgPool {
        if let Some(pool) = self.pools.lock().expect("not poisoned").get(&service) {
            return pool.clone();
        }
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.database_url(service))
            .await
            .expect("the service database is reachable");
        self.pools
            .lock()
            .expect("not poisoned")
            .insert(service, pool.clone());
        pool
    }

    /// Events still waiting in the service's outbox.
    pub async fn outbox_backlog(&self, service: Service) -> i64 {
        let pool = self.db(service).await;
        sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&pool)
            .await
            .expect("the outbox can be counted")
    }

    /// Where this stack's logs (and a test's screenshots) go.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The log lines of every instance started so far, for assertions about logging.
    pub fn logs(&self, service: Service) -> String {
        let prefix = format!("{}-", service.short_name());
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.log_dir) {
            let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for path in paths {
                let is_service = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix));
                if is_service {
                    text.push_str(&std::fs::read_to_string(path).unwrap_or_default());
                }
            }
        }
        text
    }
}
