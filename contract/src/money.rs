//! Money as whole cents, so sums and comparisons are exact; JSON carries it as a number.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A positive amount with at most two decimals, stored as cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Money(i64);

/// Why a number is not a valid amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a finite number")]
    NotFinite,
    #[error("must be greater than 0")]
    NotPositive,
    #[error("must be at most {}", Money::MAX_UNITS)]
    TooLarge,
    #[error("must have at most 2 decimal places")]
    TooPrecise,
}

impl Money {
    /// The largest accepted amount. Its cents (10^14) stay well inside the range where an
    /// `f64` holds every integer exactly, so the JSON number round-trips without loss.
    pub const MAX_UNITS: i64 = 1_000_000_000_000;

    /// Parses a JSON number as the client wrote it. Rust prints an `f64` with the fewest
    /// digits that read back to the same value, which are the digits the client typed, so
    /// counting decimals there is exact where `x * 100` would round.
    pub fn from_decimal(value: f64) -> Result<Self, MoneyError> {
        if !value.is_finite() {
            return Err(MoneyError::NotFinite);
        }
        if value <= 0.0 {
            return Err(MoneyError::NotPositive);
        }
        if value > Self::MAX_UNITS as f64 {
            return Err(MoneyError::TooLarge);
        }
        let digits = value.to_string();
        let (units, fraction) = digits.split_once('.').unwrap_or((&digits, ""));
        if fraction.len() > 2 {
            return Err(MoneyError::TooPrecise);
        }
        let units: i64 = units.parse().map_err(|_| MoneyError::TooPrecise)?;
        let cents: i64 = format!("{fraction:0<2}")
            .parse()
            .map_err(|_| MoneyError::TooPrecise)?;
        Ok(Self(units * 100 + cents))
    }

    /// Builds an amount from cents read back from our own database.
    pub fn from_cents(cents: i64) -> Self {
        Self(cents)
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl TryFrom<f64> for Money {
    type Error = MoneyError;
    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::from_decimal(value)
    }
}

impl From<Money> for f64 {
    fn from(money: Money) -> f64 {
        money.as_f64()
    }
}

/// A JSON number: positive, at most [`Money::MAX_UNITS`], with at most two decimals (which
/// the schema says in words: `multipleOf: 0.01` fails on binary fractions such as 0.29).
impl JsonSchema for Money {
    fn schema_name() -> Cow<'static, str> {
        "Money".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": Money::MAX_UNITS,
            "description": "An amount with at most two decimals",
        })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_amounts_with_up_to_two_decimals() {
        assert_eq!(Money::from_decimal(150.0).unwrap().cents(), 15_000);
        assert_eq!(Money::from_decimal(0.29).unwrap().cents(), 29);
        assert_eq!(Money::from_decimal(19.9).unwrap().cents(), 1_990);
        assert_eq!(Money::from_decimal(0.01).unwrap().cents(), 1);
        assert_eq!(
            Money::from_decimal(1e12).unwrap().cents(),
            100_000_000_000_000
        );
        assert_eq!(
            Money::from_decimal(999_999_999_999.99).unwrap().cents(),
            99_999_999_999_999
        );
    }

    #[test]
    fn rejects_what_is_not_an_amount() {
        assert_eq!(Money::from_decimal(f64::NAN), Err(MoneyError::NotFinite));
        assert_eq!(
            Money::from_decimal(f64::INFINITY),
            Err(MoneyError::NotFinite)
        );
        assert_eq!(Money::from_decimal(0.0), Err(MoneyError::NotPositive));
        assert_eq!(Money::from_decimal(-5.0), Err(MoneyError::NotPositive));
        assert_eq!(Money::from_decimal(1.005), Err(MoneyError::TooPrecise));
        assert_eq!(Money::from_decimal(0.001), Err(MoneyError::TooPrecise));
        assert_eq!(Money::from_decimal(1e-7), Err(MoneyError::TooPrecise));
        assert_eq!(Money::from_decimal(1e12 + 0.01), Err(MoneyError::TooLarge));
        assert_eq!(Money::from_decimal(1e300), Err(MoneyError::TooLarge));
    }

    #[test]
    fn round_trips_through_json_as_a_number() {
        let money: Money = serde_json::from_str("150.5").unwrap();
        assert_eq!(serde_json::to_string(&money).unwrap(), "150.5");
        assert_eq!(money.to_string(), "150.50");
        assert!(serde_json::from_str::<Money>("-1").is_err());
    }
}
