//! payment-service settings.

use common::Service;
use common::config::{CommonConfig, ConfigError, Vars, invalid, positive};
use common::host::ServiceConfig;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// Chance that one attempt succeeds, 0 to 1.
    pub success_rate: f64,
    /// Attempts before the payment fails.
    pub max_attempts: u32,
    /// The first delay between attempts; it doubles each retry, with jitter.
    pub retry_base: Duration,
    /// When set, outcomes are reproducible.
    pub seed: Option<u64>,
}

impl ServiceConfig for Config {
    fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let success_rate: f64 = vars.get_or("PAYMENT_SUCCESS_RATE", 0.8)?;
        if !(0.0..=1.0).contains(&success_rate) {
            return Err(invalid(
                "PAYMENT_SUCCESS_RATE",
                &success_rate.to_string(),
                "must be from 0 to 1",
            ));
        }
        let max_attempts = positive(vars, "PAYMENT_MAX_ATTEMPTS", 3u32)?;
        if max_attempts > 100 {
            return Err(invalid(
                "PAYMENT_MAX_ATTEMPTS",
                &max_attempts.to_string(),
                "must be at most 100",
            ));
        }
        Ok(Self {
            common: CommonConfig::from_vars(Service::Payment, vars)?,
            success_rate,
            max_attempts,
            retry_base: Duration::from_millis(vars.get_or("PAYMENT_RETRY_BASE_MS", 200u64)?),
            seed: vars.get("PAYMENT_SEED")?,
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
    fn defaults_follow_the_contract() {
        let config = Config::from_vars(&Vars::from_pairs([])).unwrap();
        assert_eq!(config.success_rate, 0.8);
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.retry_base, Duration::from_millis(200));
        assert_eq!(config.seed, None);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("PAYMENT_SUCCESS_RATE", "1.5"),
            ("PAYMENT_SUCCESS_RATE", "often"),
            ("PAYMENT_MAX_ATTEMPTS", "0"),
            ("PAYMENT_RETRY_BASE_MS", "-1"),
            ("PAYMENT_SEED", "x"),
        ] {
            let error = Config::from_vars(&Vars::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(error.name, name);
        }
    }
}
