//! Configuration comes only from environment variables, read once at start-up into typed
//! structs. A bad value stops the service with a message that names the variable.

mod placeholders;

pub use crate::vars::{ConfigError, Vars, invalid, positive, redact_urls};

use crate::amqp::nodes::Nodes;
use crate::amqp::topology::QueueType;
use crate::service::Descriptor;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for machines (`jq`, log shippers).
    Json,
}

impl FromStr for LogFormat {
    type Err = &'static str;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "pretty" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            _ => Err("expected `pretty` or `json`"),
        }
    }
}

/// The settings every service has. Its `Debug` hides the passwords in the URLs.
#[derive(Clone)]
pub struct CommonConfig {
    /// What the service told `common` about itself.
    pub service: Descriptor,
    pub database_url: String,
    /// `AMQP_URL` as given: one URL, or the nodes of one cluster separated by commas.
    pub amqp_url: String,
    /// The nodes of `AMQP_URL`, with the TLS settings of each read.
    pub amqp_nodes: Nodes,
    /// How every queue is declared (`AMQP_QUEUE_TYPE`).
    pub amqp_queue_type: QueueType,
    /// The topic exchange; every queue name is derived from it.
    pub exchange: String,
    pub http_addr: SocketAddr,
    pub log_filter: String,
    pub log_format: LogFormat,
    /// Delays before each retry of a failing message (`RETRY_DELAYS_MS`); after the last,
    /// the message is dead-lettered.
    pub retry_delays: Vec<Duration>,
    /// Deliveries handled at once (`AMQP_PREFETCH`).
    pub prefetch: u16,
    /// PostgreSQL connections (`DATABASE_POOL_SIZE`).
    pub db_pool_size: u32,
    /// Where spans go (`OTEL_EXPORTER_OTLP_ENDPOINT`, OTLP/HTTP); none are exported without.
    pub otel_endpoint: Option<String>,
    /// `service.name` of the spans (`OTEL_SERVICE_NAME`, default the binary's name).
    pub otel_service_name: String,
    /// `ADMIN_TOKEN`: admin routes need it as a bearer token; unset, they are off (403).
    pub admin_token: Option<crate::http::AdminToken>,
    /// Customer authentication (`AUTH_*`, CONTRACT §12): on, or why the API is open.
    pub auth: crate::auth::AuthSetting,
}

/// `ADMIN_TOKEN`: unset or empty turns admin routes off; a set one must be long enough
/// that guessing it is hopeless, and not a placeholder someone forgot to replace.
fn admin_token(vars: &Vars) -> Result<Option<crate::http::AdminToken>, ConfigError> {
    let Some(token) = vars.get::<String>("ADMIN_TOKEN")? else {
        return Ok(None);
    };
    if placeholders::is_placeholder(&token) {
        return Err(invalid(
            "ADMIN_TOKEN",
            "***",
            "this is a placeholder from the documentation or the shipped manifests, not a \
             secret: generate one (`openssl rand -hex 32`), or leave ADMIN_TOKEN unset to turn \
             admin routes off",
        ));
    }
    if token.len() < 16 || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(
            "ADMIN_TOKEN",
            "***",
            "use at least 16 visible ASCII characters (e.g. `openssl rand -hex 32`)",
        ));
    }
    Ok(Some(crate::http::AdminToken::new(&token)))
}

impl std::fmt::Debug for CommonConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommonConfig")
            .field("service", &self.service.name)
            .field("database_url", &redact_urls(&self.database_url))
            .field("amqp_url", &redact_urls(&self.amqp_url))
            .field("exchange", &self.exchange)
            .field("http_addr", &self.http_addr)
            .field("log_filter", &self.log_filter)
            .field("log_format", &self.log_format)
            .field("retry_delays", &self.retry_delays)
            .field("prefetch", &self.prefetch)
            .field("db_pool_size", &self.db_pool_size)
            .field("amqp_queue_type", &self.amqp_queue_type)
            .field("otel_endpoint", &self.otel_endpoint)
            .field("otel_service_name", &self.otel_service_name)
            .field("admin_token", &self.admin_token)
            .field("auth", &self.auth)
            .finish()
    }
}

/// A comma-separated list of milliseconds, e.g. `1000,5000,30000`.
#[derive(Debug, Clone)]
pub struct DelayList(pub Vec<Duration>);

impl FromStr for DelayList {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let delays = text
            .split(',')
            .map(|part| match part.trim().parse::<u64>() {
                Ok(ms) if (1..=86_400_000).contains(&ms) => Ok(Duration::from_millis(ms)),
                _ => Err(format!("{part:?} is not a delay of 1 to 86400000 ms")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(delays))
    }
}

/// The default retry schedule: quick for a lock timeout, long enough for a restart.
pub const DEFAULT_RETRY_DELAYS_MS: [u64; 4] = [1_000, 5_000, 30_000, 120_000];

impl CommonConfig {
    pub fn from_vars(service: Descriptor, vars: &Vars) -> Result<Self, ConfigError> {
        let database_url = vars.get_or(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:5432/{}", service.database),
        )?;
        crate::db::check_url(&database_url)
            .map_err(|reason| invalid("DATABASE_URL", &database_url, reason))?;

        let amqp_url = vars.get_or(
            "AMQP_URL",
            "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
        )?;
        let amqp_nodes = amqp_url
            .parse::<Nodes>()
            .map_err(|reason| invalid("AMQP_URL", &amqp_url, reason))?;

        let exchange = vars.get_or("AMQP_EXCHANGE", "orders".to_owned())?;
        let exchange_is_valid = exchange.len() <= 200
            && exchange
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !exchange_is_valid {
            return Err(invalid(
                "AMQP_EXCHANGE",
                &exchange,
                "use at most 200 letters, digits, '.', '_' or '-'",
            ));
        }

        let log_filter = vars.get_or("RUST_LOG", "info".to_owned())?;
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|reason| invalid("RUST_LOG", &log_filter, reason))?;

        Ok(Self {
            service,
            database_url,
            amqp_url,
            amqp_nodes,
            amqp_queue_type: vars.get_or("AMQP_QUEUE_TYPE", QueueType::Classic)?,
            exchange,
            http_addr: vars.get_or("HTTP_ADDR", (Ipv4Addr::UNSPECIFIED, service.port).into())?,
            log_filter,
            log_format: vars.get_or("LOG_FORMAT", LogFormat::Pretty)?,
            retry_delays: vars
                .get_or(
                    "RETRY_DELAYS_MS",
                    DelayList(DEFAULT_RETRY_DELAYS_MS.map(Duration::from_millis).to_vec()),
                )?
                .0,
            prefetch: positive(vars, "AMQP_PREFETCH", crate::consumer::DEFAULT_PREFETCH)?,
            db_pool_size: positive(vars, "DATABASE_POOL_SIZE", 10)?,
            otel_endpoint: vars
                .get::<String>("OTEL_EXPORTER_OTLP_ENDPOINT")?
                .filter(|url| !url.trim().is_empty()),
            otel_service_name: vars.get_or("OTEL_SERVICE_NAME", service.name.to_owned())?,
            admin_token: admin_token(vars)?,
            auth: crate::auth::AuthConfig::from_vars(vars)?,
        })
    }
}

#[cfg(test)]
mod tests;
