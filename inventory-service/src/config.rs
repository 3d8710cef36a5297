//! inventory-service settings: the common ones.

use common::config::{CommonConfig, ConfigError, Vars};
use common::host::ServiceConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
}

impl ServiceConfig for Config {
    fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_vars(crate::SERVICE, vars)?,
        })
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}
