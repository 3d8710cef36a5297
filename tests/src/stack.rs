//! A running system for one test: the four service binaries (or some of them, or several
//! replicas) on a fresh exchange and fresh databases, with their logs in
//! `target/test-logs/<stack>/`.

use crate::broker::TestBroker;
use crate::proxy::{Proxy, target_of};
use common::Service;
use common::amqp::topology::Topology;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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

/// Builds the service binaries once per test process.
fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| devstack::build_services(false).expect("the services build"));
}

/// A server a service connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dependency {
    Database,
    Broker,
}

/// Chooses what a [`TestStack`] runs.
pub struct StackBuilder {
    services: Vec<Service>,
    proxied: Vec<(Service, Dependency)>,
    env: Vec<(String, String)>,
    service_env: HashMap<Service, Vec<(String, String)>>,
    replicas: HashMap<Service, usize>,
    database_user: Option<String>,
    amqp_url: Option<String>,
}

impl StackBuilder {
    /// The services log in to PostgreSQL as `user` (the test's own checks stay superuser).
    pub fn database_user(mut self, user: &str) -> Self {
        self.database_user = Some(user.into());
        self
    }

    /// Uses these RabbitMQ nodes (`AMQP_URL`, comma-separated) instead of [`amqp_url`],
    /// for the services and the test's own connection.
    pub fn amqp_url(mut self, list: &str) -> Self {
        self.amqp_url = Some(list.into());
        self
    }

    /// Sets a variable for every service.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Sets a variable for one service.
    pub fn service_env(mut self, service: Service, name: &str, value: &str) -> Self {
        self.service_env
            .entry(service)
            .or_default()
            .push((name.into(), value.into()));
        self
    }

    /// Runs `count` replicas of `service`.
    pub fn replicas(mut self, service: Service, count: usize) -> Self {
        self.replicas.insert(service, count);
        self
    }

    /// Connects `service` to `dependency` through a [`Proxy`] the test controls.
    pub fn through_proxy(mut self, service: Service, dependency: Dependency) -> Self {
        self.proxied.push((service, dependency));
        self
    }

    /// Runs only these services (the others' queues still exist and fill up).
    pub fn only(mut self, services: &[Service]) -> Self {
        self.services = services.to_vec();
        self
    }

    pub async fn start(self) -> TestStack {
        ensure_built();
        let name = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let log_dir = devstack::bin_dir()
            .expect("the test binary has a directory")
            .parent()
            .expect("target/<profile> has a parent")
            .join("test-logs")
            .join(&name);
        std::fs::create_dir_all(&log_dir).expect("the log directory can be created");
        let topology = Topology {
            exchange: name.clone(),
            retry_delays: TEST_RETRY_DELAYS_MS.map(Duration::from_millis).to_vec(),
            queue_type: Default::default(),
        };
        let amqp_url = self.amqp_url.unwrap_or_else(amqp_url);
        let broker = TestBroker::connect(&topology, &amqp_url).await;
        let mut proxies = HashMap::new();
        for (service, dependency) in self.proxied {
            let url = match dependency {
                Dependency::Database => postgres_url(),
                Dependency::Broker => amqp_url.clone(),
            };
            proxies.insert((service, dependency), Proxy::start(target_of(&url)).await);
        }
        let mut stack = TestStack {
            proxies,
            name,
            amqp_url,
            topology,
            broker,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .expect("an HTTP client"),
            env: self.env,
            service_env: self.service_env,
            instances: HashMap::new(),
            started: 0,
            log_dir,
            pools: Default::default(),
            expected_stock: BTreeMap::from([
                ("product-A".to_owned(), 10),
                ("product-B".to_owned(), 5),
                ("product-C".to_owned(), 0),
            ]),
            expected_dead_letters: HashMap::new(),
            rabbitmq_node: None,
            database_user: self.database_user,
            cleaned: false,
        };
        // order-service starts last: its dashboard needs inventory-service's address.
        let (order, others): (Vec<Service>, Vec<Service>) =
            self.services.iter().partition(|s| **s == Service::Order);
        for group in [others, order] {
            if group.contains(&Service::Order) && !stack.instances(Service::Inventory).is_empty() {
                let inventory = stack.url(Service::Inventory, "");
                stack
                    .service_env
                    .entry(Service::Order)
                    .or_default()
                    .insert(0, ("INVENTORY_URL".into(), inventory));
            }
            let mut pending = Vec::new();
            for service in group {
                for _ in 0..self.replicas.get(&service).copied().unwrap_or(1) {
                    pending.push(stack.spawn(service));
                }
            }
            for instance in pending {
                let instance = instance.await_ready().await;
                stack
                    .instances
                    .entry(instance.service)
                    .or_default()
                    .push(instance);
            }
        }
        stack
    }
}

/// One service process.
pub struct Instance {
    pub service: Service,
    pub addr: SocketAddr,
    pub log: PathBuf,
    child: Child,
}

/// A process that has been started but has not said `ready` yet.
pub struct Starting {
    service: Service,
    log: PathBuf,
    child: Child,
}

impl Starting {
    /// Waits for the `ready` line and reads the HTTP address from it.
    pub async fn await_ready(mut self) -> Instance {
        let started = Instant::now();
        loop {
            if let Some(addr) = ready_address(&self.log) {
                return Instance {
                    service: self.service,
                    addr,
                    log: self.log,
                    child: self.child,
                };
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.service.name(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = self.child.kill();
                panic!(
                    "{} was not ready within {START_TIMEOUT:?}; log: {}",
                    self.service.name(),
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The `http_addr` of the `ready` line in a JSON log, once it is there.
fn ready_address(log: &Path) -> Option<SocketAddr> {
    let file = File::open(log).ok()?;
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let entry: Value = serde_json::from_str(&line).ok()?;
            (entry["message"] == "ready").then(|| entry["http_addr"].as_str()?.parse().ok())?
        })
}

impl Instance {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, name: &str) {
        devstack::signal(self.pid(), name).expect("the process can be signalled");
    }

    /// Waits for the process to exit, for at most `timeout`.
    async fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
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
    cleaned: bool,
}

impl TestStack {
    pub fn builder() -> StackBuilder {
        StackBuilder {
            services: Service::ALL.to_vec(),
            proxied: Vec::new(),
            env: Vec::new(),
            service_env: HashMap::new(),
            replicas: HashMap::new(),
            database_user: None,
            amqp_url: None,
        }
    }

    /// All four services with default settings but a certain payment.
    pub async fn start() -> Self {
        Self::builder()
            .env("PAYMENT_SUCCESS_RATE", "1")
            .start()
            .await
    }

    pub fn database_url(&self, service: Service) -> String {
        format!("{}/{}_{}", postgres_url(), self.name, service.short_name())
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
        match self.proxies.get(&(service, dependency)) {
            Some(proxy) => proxy.rewrite(&direct),
            None => direct,
        }
    }

    /// The environment a service of this stack runs with.
    fn command(&self, service: Service) -> Command {
        let mut command = Command::new(devstack::binary(service.name()).expect("binary path"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.url_for(service, Dependency::Database))
            .env("AMQP_URL", self.url_for(service, Dependency::Broker))
            .env("AMQP_EXCHANGE", &self.name)
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env(
                "RETRY_DELAYS_MS",
                TEST_RETRY_DELAYS_MS.map(|ms| ms.to_string()).join(","),
            )
            .env("PAYMENT_RETRY_BASE_MS", "20")
            .env("ADMIN_TOKEN", TEST_ADMIN_TOKEN);
        for (name, value) in self
            .env
            .iter()
            .chain(self.service_env.get(&service).into_iter().flatten())
        {
            command.env(name, value);
        }
        command
    }

    /// Starts one more process of `service`; await [`Starting::await_ready`] on the result.
    pub fn spawn(&mut self, service: Service) -> Starting {
        self.started += 1;
        let log = self
            .log_dir
            .join(format!("{}-{}.log", service.short_name(), self.started));
        let file = File::create(&log).expect("the log file can be created");
        let child = self
            .command(service)
            .stdout(file.try_clone().expect("the log file can be shared"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("the service binary starts");
        Starting {
            service,
            log,
            child,
        }
    }

    /// Starts one more replica of `service` and waits until it is ready.
    pub async fn add_replica(&mut self, service: Service) {
        let instance = self.spawn(service).await_ready().await;
        self.instances.entry(service).or_default().push(instance);
    }

    pub fn instances(&self, service: Service) -> &[Instance] {
        self.instances
            .get(&service)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The base URL of the first running instance of `service`.
    pub fn url(&self, service: Service, path: &str) -> String {
        let instance = self
            .instances(service)
            .first()
            .unwrap_or_else(|| panic!("{} is not running", service.name()));
        format!("http://{}{}", instance.addr, path)
    }

    /// SIGKILL every instance of `service`: no chance to finish anything.
    pub async fn kill(&mut self, service: Service) {
        for mut instance in self.instances.remove(&service).unwrap_or_default() {
            instance.signal("KILL");
            instance.wait(Duration::from_secs(10)).await;
        }
    }

    /// SIGTERM every instance of `service` and returns their exit statuses, `None` for one
    /// that did not exit within `timeout`.
    pub async fn terminate(
        &mut self,
        service: Service,
        timeout: Duration,
    ) -> Vec<Option<ExitStatus>> {
        let mut statuses = Vec::new();
        for mut instance in self.instances.remove(&service).unwrap_or_default() {
            instance.signal("TERM");
            let status = instance.wait(timeout).await;
            if status.is_none() {
                instance.signal("KILL");
            }
            statuses.push(status);
        }
        statuses
    }

    /// Sends a signal (`TERM`, `KILL`, …) to every instance of `service`; a paused one
    /// receives it when resumed.
    pub fn signal(&self, service: Service, name: &str) {
        self.instances(service).iter().for_each(|i| i.signal(name));
    }

    /// SIGSTOP: the processes freeze, holding their connections and unacked messages.
    pub fn pause(&self, service: Service) {
        self.instances(service)
            .iter()
            .for_each(|i| i.signal("STOP"));
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&self, service: Service) {
        self.instances(service)
            .iter()
            .for_each(|i| i.signal("CONT"));
    }

    /// Starts `count` fresh instances of `service` (after a kill or terminate).
    pub async fn restart(&mut self, service: Service, count: usize) {
        for _ in 0..count {
            self.add_replica(service).await;
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

    /// Stops everything and removes the databases, queues and exchange.
    pub async fn cleanup(mut self) {
        self.cleaned = true;
        for service in Service::ALL {
            self.kill(service).await;
        }
        let pools: Vec<PgPool> = self
            .pools
            .lock()
            .expect("not poisoned")
            .drain()
            .map(|(_, p)| p)
            .collect();
        for pool in pools {
            pool.close().await;
        }
        remove_resources(&self.name, &self.topology, &self.amqp_url).await;
    }
}

impl Drop for TestStack {
    /// A test that panicked still removes its processes, databases and queues.
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        for instance in self.instances.values_mut().flatten() {
            let _ = instance.child.kill();
            let _ = instance.child.wait();
        }
        let name = self.name.clone();
        let topology = self.topology.clone();
        let amqp_url = self.amqp_url.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(remove_resources(&name, &topology, &amqp_url));
            }
        })
        .join();
    }
}

async fn remove_resources(name: &str, topology: &Topology, amqp_url: &str) {
    if let Ok(pool) = PgPool::connect(&format!("{}/postgres", postgres_url())).await {
        for service in Service::ALL {
            let database = format!("{name}_{}", service.short_name());
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
            )))
            .execute(&pool)
            .await;
        }
        pool.close().await;
    }
    crate::broker::delete_topology(topology, amqp_url).await;
}
