//! [`OrderId`]: the id of an order — in every event, every read of another service and every
//! service's tables — so an order id cannot be taken for a payment's, an event's or any
//! other UUID. JSON carries it as the UUID string; with the `sqlx` feature (the services
//! turn it on) PostgreSQL stores it as `uuid`.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use uuid::Uuid;

/// An order's id: a version 7 UUID when order-service makes it, so ids sort by creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
pub struct OrderId(Uuid);

impl OrderId {
    /// A fresh id for a new order.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// The order with this UUID (an id read back from somewhere that holds plain UUIDs).
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID, where a plain one is asked for (a trace's correlation id, a key's hash).
    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl Default for OrderId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for OrderId {
    type Err = uuid::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::from_str(text).map(Self)
    }
}

/// In the events' JSON Schemas an order id is written out where it stands — a UUID
/// string, as before the type existed — not referred to as a definition of its own.
impl JsonSchema for OrderId {
    fn schema_name() -> Cow<'static, str> {
        "OrderId".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        Uuid::json_schema(generator)
    }
}

impl utoipa::PartialSchema for OrderId {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .description(Some("An order's id"))
            .into()
    }
}

impl utoipa::ToSchema for OrderId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_carries_the_uuid_string_and_reads_it_back() {
        let id = OrderId::new();
        let written = serde_json::to_string(&id).unwrap();
        assert_eq!(written, format!("\"{}\"", id.as_uuid()));
        assert_eq!(serde_json::from_str::<OrderId>(&written).unwrap(), id);
        assert!(serde_json::from_str::<OrderId>("\"not-a-uuid\"").is_err());
        assert_eq!(id.to_string().parse::<OrderId>().unwrap(), id);
    }
}
