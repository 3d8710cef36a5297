//! order-service settings.

use common::config::{CommonConfig, ConfigError, Vars, invalid, positive};
use common::host::ServiceConfig;
use common::service::Descriptor;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// A `PENDING` order older than this is cancelled with reason `TIMEOUT`.
    pub saga_timeout: Duration,
    /// Where the dashboard reads stock from (`INVENTORY_URL`).
    pub inventory_url: reqwest::Url,
    /// Where the dashboard reads the payment provider's circuit breakers from
    /// (`PAYMENT_URL`).
    pub payment_url: reqwest::Url,
    /// How long the saga view keeps an event (`SAGA_AUDIT_RETENTION_HOURS`, default 168).
    pub saga_audit_retention: Duration,
    /// Past this many `PENDING` orders, `POST /api/orders` answers 503 whatever else
    /// (within 40 ms: it waits that long for a place to free) (`MAX_PENDING_ORDERS`,
    /// CONTRACT §9): the hard ceiling of the adaptive bound, default 1,000.
    pub max_pending_orders: i64,
    /// The time an accepted saga is to take: the bound on `PENDING` orders follows the
    /// measured drain rate so that it holds, `MAX_PENDING_ORDERS` at most
    /// (`ADMISSION_TARGET_MS`; 0, the default: the bound is `MAX_PENDING_ORDERS`, fixed, as
    /// CONTRACT §9 names it — with a target, a failover's stall sheds POSTs far below it,
    /// which clients of the contract do not expect). See `intake::limit`. Under 1 s the bound holds
    /// less work than a client that honours the shortest `Retry-After` (1 s) sleeps, and
    /// such clients leave the pipeline idle (BENCHMARKS.md "An admission bound that follows
    /// the system").
    pub admission_target: Option<Duration>,
    /// A `COMPLETED` order may still be cancelled (stock returned, charge refunded) for
    /// this long after it completed (`ORDER_CANCEL_WINDOW_SECS`, default a day; 0: never).
    pub cancel_window: Duration,
}

/// Another service's base URL (`INVENTORY_URL`, `PAYMENT_URL`); must be http(s).
fn service_url(vars: &Vars, name: &str, default: &str) -> Result<reqwest::Url, ConfigError> {
    let url: reqwest::Url = vars.get_or(name, default.parse().expect("a valid URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(name, url.as_str(), "must be an http or https URL"));
    }
    Ok(url)
}

impl ServiceConfig for Config {
    fn from_vars(service: Descriptor, vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_vars(service, vars)?,
            saga_timeout: Duration::from_secs(positive(vars, "SAGA_TIMEOUT_SECS", 60u64)?),
            inventory_url: service_url(vars, "INVENTORY_URL", "http://127.0.0.1:8001")?,
            payment_url: service_url(vars, "PAYMENT_URL", "http://127.0.0.1:8002")?,
            saga_audit_retention: Duration::from_secs(
                3600 * positive(vars, "SAGA_AUDIT_RETENTION_HOURS", 168u64)?,
            ),
            max_pending_orders: positive(vars, "MAX_PENDING_ORDERS", 1000i64)?,
            admission_target: match vars.get_or("ADMISSION_TARGET_MS", 0u64)? {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            cancel_window: Duration::from_secs(vars.get_or("ORDER_CANCEL_WINDOW_SECS", 86_400u64)?),
        })
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_reads_the_other_services_at_their_local_ports_by_default() {
        let config = Config::from_vars(crate::SERVICE, &Vars::from_pairs([])).unwrap();
        assert_eq!(config.inventory_url.as_str(), "http://127.0.0.1:8001/");
        assert_eq!(config.payment_url.as_str(), "http://127.0.0.1:8002/");
    }

    #[test]
    fn a_service_url_that_is_not_http_names_its_variable() {
        for name in ["INVENTORY_URL", "PAYMENT_URL"] {
            for value in ["ftp://payment:8002", "not a url"] {
                let error = Config::from_vars(crate::SERVICE, &Vars::from_pairs([(name, value)]))
                    .unwrap_err();
                assert_eq!(error.name, name);
            }
        }
    }
}
