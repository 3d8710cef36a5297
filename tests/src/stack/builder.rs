//! Choosing what a [`TestStack`] runs, and starting it.

use super::{Dependency, TEST_RETRY_DELAYS_MS, TestStack, amqp_url, ensure_built, postgres_url};
use crate::broker::TestBroker;
use crate::proxy::{Proxy, target_of};
use ::contract::Service;
use common::amqp::topology::Topology;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Chooses what a [`TestStack`] runs.
pub struct StackBuilder {
    services: Vec<Service>,
    proxied: Vec<(Service, Dependency)>,
    env: Vec<(String, String)>,
    service_env: HashMap<Service, Vec<(String, String)>>,
    replicas: HashMap<Service, usize>,
    database_user: Option<String>,
    amqp_url: Option<String>,
    postgres: Option<String>,
    database_params: Option<String>,
    bearer: Option<String>,
}

impl StackBuilder {
    /// Turns authentication on (CONTRACT §12) with keys from this JWKS URL and the test
    /// issuer, and makes the stack's own client (the helpers, the invariants) send
    /// `admin_token` — an `orders:admin` JWT — with every request that sends no other.
    pub fn authenticated(self, jwks_url: &str, admin_token: &str) -> Self {
        self.env("AUTH_JWKS_URL", jwks_url)
            .env("AUTH_ISSUER", crate::auth::ISSUER)
            .bearer(admin_token)
    }

    /// The stack's client sends `Authorization: Bearer <token>` unless a request sets its own.
    pub fn bearer(mut self, token: &str) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// The services log in to PostgreSQL as `user` (the test's own checks stay superuser).
    pub fn database_user(mut self, user: &str) -> Self {
        self.database_user = Some(user.into());
        self
    }

    /// Uses this PostgreSQL server (a URL without a database) instead of [`postgres_url`],
    /// for the services and the test's own checks.
    pub fn postgres(mut self, url: &str) -> Self {
        self.postgres = Some(url.into());
        self
    }

    /// Appends these query parameters to every service's `DATABASE_URL`.
    pub fn database_params(mut self, params: &str) -> Self {
        self.database_params = Some(params.into());
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
            layout: ::contract::queues::layout(&name),
        };
        let amqp_url = self.amqp_url.unwrap_or_else(amqp_url);
        let broker = TestBroker::connect(&topology, &amqp_url).await;
        let mut proxies = HashMap::new();
        for (service, dependency) in self.proxied {
            let url = match dependency {
                Dependency::Database => self.postgres.clone().unwrap_or_else(postgres_url),
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
            http: client(self.bearer.as_deref()),
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
            postgres: self.postgres.unwrap_or_else(postgres_url),
            database_params: self.database_params,
            cleaned: false,
        };
        // order-service starts last: its dashboard needs inventory-service's and
        // payment-service's addresses.
        let (order, others): (Vec<Service>, Vec<Service>) =
            self.services.iter().partition(|s| **s == Service::Order);
        for group in [others, order] {
            for (service, variable) in [
                (Service::Inventory, "INVENTORY_URL"),
                (Service::Payment, "PAYMENT_URL"),
            ] {
                if group.contains(&Service::Order) && !stack.instances(service).is_empty() {
                    let url = stack.url(service, "");
                    stack
                        .service_env
                        .entry(Service::Order)
                        .or_default()
                        .insert(0, (variable.into(), url));
                }
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
            postgres: None,
            database_params: None,
            bearer: None,
        }
    }

    /// All four services with default settings but a certain payment.
    pub async fn start() -> Self {
        Self::builder()
            .env("PAYMENT_SUCCESS_RATE", "1")
            .start()
            .await
    }
}

/// The stack's HTTP client, sending `bearer` by default.
fn client(bearer: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = bearer {
        let value = format!("Bearer {token}")
            .parse()
            .expect("a token is a header value");
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .default_headers(headers)
        .build()
        .expect("an HTTP client")
}
