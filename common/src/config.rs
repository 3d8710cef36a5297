//! Configuration comes only from environment variables, read once at start-up into typed
//! structs. A bad value stops the service with a message that names the variable.

use crate::Service;
use crate::amqp::nodes::Nodes;
use crate::amqp::topology::QueueType;
use std::fmt::Display;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// A variable whose value cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid environment variable {name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub reason: String,
}

/// Looks a variable up by name.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where variables come from: the process environment, or a fixed list in tests.
pub struct Vars {
    lookup: Lookup,
}

impl Vars {
    /// The process environment; a value that is not UTF-8 reads as the replacement text
    /// and then fails to parse, naming its variable.
    pub fn from_env() -> Self {
        Self {
            lookup: Box::new(|name| {
                std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
            }),
        }
    }

    /// A fixed set of variables, for tests.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let map: std::collections::HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self {
            lookup: Box::new(move |name| map.get(name).cloned()),
        }
    }

    /// Reads `name`, or returns `default` when it is unset or empty.
    pub fn get_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.get(name)?.unwrap_or(default))
    }

    /// Reads `name` when it is set and not empty.
    pub fn get<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match (self.lookup)(name) {
            Some(value) if !value.trim().is_empty() => value
                .trim()
                .parse()
                .map(Some)
                .map_err(|error: T::Err| invalid(name, &value, error)),
            _ => Ok(None),
        }
    }
}

/// Reads a number that must be at least 1.
pub fn positive<T>(vars: &Vars, name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + From<u8> + Display + Copy,
    T::Err: Display,
{
    let value = vars.get_or(name, default)?;
    if value < T::from(1) {
        return Err(invalid(name, &value.to_string(), "must be at least 1"));
    }
    Ok(value)
}

/// Builds the error for a variable that parsed but is out of range.
pub fn invalid(name: &str, value: &str, reason: impl Display) -> ConfigError {
    ConfigError {
        name: name.to_owned(),
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

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

/// The settings every service has.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    pub service: Service,
    pub database_url: String,
    /// `AMQP_URL` as given: one URL, or the nodes of one cluster separated by commas
    /// (checked to parse as [`Nodes`]).
    pub amqp_url: String,
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
    pub fn from_vars(service: Service, vars: &Vars) -> Result<Self, ConfigError> {
        let database_url = vars.get_or(
            "DATABASE_URL",
            format!(
                "postgres://postgres@127.0.0.1:5432/{}_db",
                service.short_name()
            ),
        )?;
        crate::db::database_name(&database_url)
            .map_err(|reason| invalid("DATABASE_URL", &database_url, reason))?;

        let amqp_url = vars.get_or(
            "AMQP_URL",
            "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
        )?;
        amqp_url
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
            amqp_queue_type: vars.get_or("AMQP_QUEUE_TYPE", QueueType::Classic)?,
            exchange,
            http_addr: vars.get_or("HTTP_ADDR", service.default_http_addr())?,
            log_filter,
            log_format: vars.get_or("LOG_FORMAT", LogFormat::Pretty)?,
            retry_delays: vars
                .get_or(
                    "RETRY_DELAYS_MS",
                    DelayList(DEFAULT_RETRY_DELAYS_MS.map(Duration::from_millis).to_vec()),
                )?
                .0,
            prefetch: positive(
                vars,
                "AMQP_PREFETCH",
                crate::amqp::consumer::DEFAULT_PREFETCH,
            )?,
            db_pool_size: positive(vars, "DATABASE_POOL_SIZE", 10)?,
            otel_endpoint: vars
                .get::<String>("OTEL_EXPORTER_OTLP_ENDPOINT")?
                .filter(|url| !url.trim().is_empty()),
            otel_service_name: vars.get_or("OTEL_SERVICE_NAME", service.name().to_owned())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let config = CommonConfig::from_vars(Service::Payment, &Vars::from_pairs([])).unwrap();
        assert_eq!(
            config.database_url,
            "postgres://postgres@127.0.0.1:5432/payment_db"
        );
        assert_eq!(config.amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(config.amqp_queue_type, QueueType::Classic);
        assert_eq!(config.exchange, "orders");
        assert_eq!(config.http_addr.to_string(), "0.0.0.0:8002");
        assert_eq!(config.log_format, LogFormat::Pretty);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            ("HTTP_ADDR", "localhost"),
            ("LOG_FORMAT", "xml"),
            ("AMQP_EXCHANGE", "has space"),
            ("AMQP_URL", "http://nope"),
            ("AMQP_URL", "amqp://a@h1/%2f,,amqp://a@h3/%2f"),
            ("AMQP_QUEUE_TYPE", "mirrored"),
            ("DATABASE_URL", "postgres://127.0.0.1:5432/"),
            ("RUST_LOG", "info,[[["),
            ("RETRY_DELAYS_MS", "100,abc"),
            ("AMQP_PREFETCH", "0"),
        ] {
            let error = CommonConfig::from_vars(Service::Order, &Vars::from_pairs([(name, value)]))
                .unwrap_err();
            assert_eq!(error.name, name);
            assert!(error.to_string().contains(name), "{error}");
        }
    }

    #[test]
    fn a_cluster_is_a_list_of_nodes_with_quorum_queues() {
        let list = "amqp://u:p@rabbit-1:5672/%2f,amqp://u:p@rabbit-2:5672/%2f";
        let config = CommonConfig::from_vars(
            Service::Order,
            &Vars::from_pairs([("AMQP_URL", list), ("AMQP_QUEUE_TYPE", "quorum")]),
        )
        .unwrap();
        assert_eq!(config.amqp_url, list);
        assert_eq!(config.amqp_queue_type, QueueType::Quorum);
    }
}
