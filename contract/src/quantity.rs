//! How many units of a product one order line asks for.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A whole number of units, 1 to [`Quantity::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 10_000;

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A quantity outside 1…10 000.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an integer from 1 to {}", Quantity::MAX)]
pub struct QuantityError;

impl TryFrom<i64> for Quantity {
    type Error = QuantityError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        match u32::try_from(value) {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(QuantityError),
        }
    }
}

impl From<Quantity> for i64 {
    fn from(quantity: Quantity) -> i64 {
        quantity.0.into()
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "minimum": 1, "maximum": Quantity::MAX})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_to_ten_thousand_only() {
        assert_eq!(Quantity::try_from(1).unwrap().get(), 1);
        assert_eq!(Quantity::try_from(10_000).unwrap().get(), 10_000);
        assert!(Quantity::try_from(0).is_err());
        assert!(Quantity::try_from(-1).is_err());
        assert!(Quantity::try_from(10_001).is_err());
        assert!(serde_json::from_str::<Quantity>("2.5").is_err());
    }
}
