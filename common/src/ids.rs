//! Customer and product ids, parsed once (CONTRACT §2): non-blank, at most
//! [`MAX_ID_CHARS`] characters, free of control characters (PostgreSQL cannot even store
//! NUL in text). The rule, its messages and its JSON Schema are written here only; the
//! types carry serde, their OpenAPI schema and an axum path extractor.
//!
//! The events keep plain strings: a consumer must read whatever an older or foreign
//! publisher sent rather than dead-letter it for an id rule of this API.

use crate::http::{ApiError, FieldError, LocPart};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::collections::HashMap;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// Longest `customer_id` or `product_id`, in characters.
pub const MAX_ID_CHARS: usize = 100;

/// [`IdError`]'s rule as a JSON Schema pattern: some character that is not white space,
/// and no control characters.
const PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

/// Why a text is not an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must be at most {MAX_ID_CHARS} characters")]
    TooLong,
}

impl IdError {
    /// This problem, located like FastAPI does.
    pub fn at(self, loc: Vec<LocPart>) -> FieldError {
        FieldError::new(loc, self.to_string())
    }
}

fn check(id: &str) -> Result<(), IdError> {
    if id.trim().is_empty() {
        Err(IdError::Empty)
    } else if id.chars().any(char::is_control) {
        Err(IdError::ControlCharacter)
    } else if id.chars().count() > MAX_ID_CHARS {
        Err(IdError::TooLong)
    } else {
        Ok(())
    }
}

/// The JSON Schema of an id, with an example.
fn schema(example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_ID_CHARS))
        .pattern(Some(PATTERN))
        .description(Some(
            "1 to 100 characters, not blank, no control characters",
        ))
        .examples([example])
        .into()
}

/// Reads path parameter `name` of the request.
async fn path_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    name: &str,
) -> Result<String, ApiError> {
    let crate::http::Path(mut params) =
        crate::http::Path::<HashMap<String, String>>::from_request_parts(parts, state).await?;
    params
        .remove(name)
        .ok_or_else(|| ApiError::internal(format!("the route has no path parameter {name}")))
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $param:literal, $example:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: impl Into<String>) -> Result<Self, IdError> {
                let text = text.into();
                check(&text)?;
                Ok(Self(text))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::parse(text).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                schema($example)
            }
        }

        impl utoipa::ToSchema for $name {}

        /// The path parameter of the same name; one that breaks the rule gets a 422
        /// located at `["path", …]`.
        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                let text = path_param(parts, state, $param).await?;
                Self::parse(text)
                    .map_err(|error| ApiError::Validation(vec![error.at(vec!["path".into(), $param.into()])]))
            }
        }
    };
}

id_type!(
    /// Who placed an order.
    CustomerId,
    "customer_id",
    "customer-123"
);
id_type!(
    /// A product in stock or in an order.
    ProductId,
    "product_id",
    "product-A"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_printable_and_not_blank() {
        assert!(CustomerId::parse("customer-123").is_ok());
        assert!(ProductId::parse("ünïcode ok").is_ok());
        assert_eq!(ProductId::parse(""), Err(IdError::Empty));
        assert_eq!(ProductId::parse(" \t"), Err(IdError::Empty));
        assert_eq!(
            ProductId::parse("nul\0byte"),
            Err(IdError::ControlCharacter)
        );
        assert_eq!(
            CustomerId::parse("line\nbreak"),
            Err(IdError::ControlCharacter)
        );
        assert!(ProductId::parse("x".repeat(MAX_ID_CHARS)).is_ok());
        assert_eq!(
            ProductId::parse("x".repeat(MAX_ID_CHARS + 1)),
            Err(IdError::TooLong)
        );
    }

    #[test]
    fn ids_read_and_write_as_plain_strings() {
        let id: ProductId = serde_json::from_str("\"product-A\"").unwrap();
        assert_eq!(id.as_str(), "product-A");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"product-A\"");
        assert!(serde_json::from_str::<ProductId>("\"\"").is_err());
    }
}
