//! [`Timestamp`]: a time in API responses as the original service wrote it — UTC, ISO 8601
//! with microseconds and no offset, e.g. `2025-12-16T10:00:00.000000` (CONTRACT §2) — with
//! its OpenAPI schema, so a response field only names the type.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// The format of every time an API answers with.
const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f";

/// A moment, written in the contract's format; read from and written to PostgreSQL as a
/// `timestamptz`. The field is private so the type stays free to change its insides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// The moment, for arithmetic and comparisons with other times.
    pub fn to_utc(self) -> DateTime<Utc> {
        self.0
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Self {
        Self(at)
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(at: Timestamp) -> Self {
        at.0
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.format(FORMAT))
    }
}

/// Reads what [`Serialize`] wrote (another service's answer), or RFC 3339 with an offset.
impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        NaiveDateTime::parse_from_str(&text, FORMAT)
            .map(|naive| naive.and_utc())
            .or_else(|_| DateTime::parse_from_rfc3339(&text).map(|at| at.to_utc()))
            .map(Self)
            .map_err(|_| serde::de::Error::custom(format!("not a UTC time: {text:?}")))
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("UTC, ISO 8601 with microseconds and no offset"))
            .examples(["2025-12-16T10:00:00.000000"])
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_microseconds_without_offset() {
        let at = DateTime::parse_from_rfc3339("2025-12-16T10:00:00.5Z").unwrap();
        assert_eq!(
            serde_json::to_string(&Timestamp(at.into())).unwrap(),
            "\"2025-12-16T10:00:00.500000\""
        );
    }

    #[test]
    fn reads_what_it_writes_and_rfc3339() {
        let at = Timestamp(
            DateTime::parse_from_rfc3339("2025-12-16T10:00:00.123456Z")
                .unwrap()
                .into(),
        );
        let written = serde_json::to_string(&at).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&written).unwrap(), at);
        assert_eq!(
            serde_json::from_str::<Timestamp>("\"2025-12-16T11:00:00.123456+01:00\"").unwrap(),
            at
        );
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }
}
