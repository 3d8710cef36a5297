//! payment-service settings.

use crate::breaker::{self, MAX_OPEN};
use common::config::{CommonConfig, ConfigError, Vars, invalid, positive};
use common::host::ServiceConfig;
use common::service::Descriptor;
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
    /// Makes the simulator's outcomes reproducible: attempt k of the n-th order charged
    /// depends only on the seed, n and k.
    pub seed: Option<u64>,
    /// The card processor's base URL (`PAYMENT_PROVIDER_URL`); unset → the simulator.
    pub provider_url: Option<String>,
    /// A provider call that takes longer has an unknown outcome.
    pub provider_timeout: Duration,
    /// When the provider's circuit breaker opens, and for how long
    /// (`PAYMENT_BREAKER_FAILURES`, `PAYMENT_BREAKER_OPEN_MS`).
    pub breaker: breaker::Settings,
}

impl ServiceConfig for Config {
    fn from_vars(service: Descriptor, vars: &Vars) -> Result<Self, ConfigError> {
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
        let provider_url: Option<String> = vars.get("PAYMENT_PROVIDER_URL")?;
        if let Some(url) = &provider_url {
            let parsed = reqwest::Url::parse(url)
                .map_err(|error| invalid("PAYMENT_PROVIDER_URL", url, error))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(invalid(
                    "PAYMENT_PROVIDER_URL",
                    url,
                    "must be an http:// or https:// URL",
                ));
            }
        }
        let timeout_ms = positive(vars, "PAYMENT_PROVIDER_TIMEOUT_MS", 5_000u64)?;
        Ok(Self {
            breaker: breaker_settings(vars)?,
            common: CommonConfig::from_vars(service, vars)?,
            provider_url,
            provider_timeout: Duration::from_millis(timeout_ms),
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

/// `PAYMENT_BREAKER_FAILURES` (default 5) and `PAYMENT_BREAKER_OPEN_MS` (default 5000, at
/// most the 60 s an open period may grow to).
fn breaker_settings(vars: &Vars) -> Result<breaker::Settings, ConfigError> {
    let open_ms = positive(vars, "PAYMENT_BREAKER_OPEN_MS", 5_000u64)?;
    if u128::from(open_ms) > MAX_OPEN.as_millis() {
        return Err(invalid(
            "PAYMENT_BREAKER_OPEN_MS",
            &open_ms.to_string(),
            format!("must be at most {}", MAX_OPEN.as_millis()),
        ));
    }
    Ok(breaker::Settings {
        failures: positive(vars, "PAYMENT_BREAKER_FAILURES", 5u32)?,
        open_for: Duration::from_millis(open_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let config = Config::from_vars(crate::SERVICE, &Vars::from_pairs([])).unwrap();
        assert_eq!(config.success_rate, 0.8);
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.retry_base, Duration::from_millis(200));
        assert_eq!(config.seed, None);
        assert_eq!(config.provider_url, None);
        assert_eq!(config.provider_timeout, Duration::from_secs(5));
        assert_eq!(config.breaker.failures, 5);
        assert_eq!(config.breaker.open_for, Duration::from_secs(5));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("PAYMENT_SUCCESS_RATE", "1.5"),
            ("PAYMENT_SUCCESS_RATE", "often"),
            ("PAYMENT_MAX_ATTEMPTS", "0"),
            ("PAYMENT_RETRY_BASE_MS", "-1"),
            ("PAYMENT_SEED", "x"),
            ("PAYMENT_PROVIDER_URL", "not a url"),
            ("PAYMENT_PROVIDER_URL", "ftp://provider"),
            ("PAYMENT_PROVIDER_TIMEOUT_MS", "0"),
            ("PAYMENT_BREAKER_FAILURES", "0"),
            ("PAYMENT_BREAKER_FAILURES", "-1"),
            ("PAYMENT_BREAKER_FAILURES", "many"),
            ("PAYMENT_BREAKER_OPEN_MS", "0"),
            ("PAYMENT_BREAKER_OPEN_MS", "60001"),
        ] {
            let error =
                Config::from_vars(crate::SERVICE, &Vars::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(error.name, name);
        }
    }
}
