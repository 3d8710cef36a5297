//! order-service settings.

use common::Service;
use common::config::{CommonConfig, ConfigError, Vars, positive};
use common::host::ServiceConfig;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// A `PENDING` order older than this is cancelled with reason `TIMEOUT`.
    pub saga_timeout: Duration,
}

impl ServiceConfig for Config {
    fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_vars(Service::Order, vars)?,
            saga_timeout: Duration::from_secs(positive(vars, "SAGA_TIMEOUT_SECS", 60u64)?),
        })
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}
