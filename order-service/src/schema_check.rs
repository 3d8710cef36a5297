//! Checks an operator's edited event body (CONTRACT §16) against the event's JSON Schema
//! from the contract — the schemas checked in under `contract/schemas/`, which the drift
//! test holds equal to `contract::schema::of` and the compatibility gate guards — so an
//! edit can only send what every consumer accepts.

use contract::events::KINDS;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Why an edited body cannot go out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaCheckError {
    #[error("unknown event type {0:?}: the contract has no schema to check an edit against")]
    UnknownEventType(String),
    /// Each problem as (where in the body, JSON Pointer; what is wrong).
    #[error("the body does not match the {event_type} schema")]
    Mismatch {
        event_type: String,
        errors: Vec<(String, String)>,
    },
}

/// One compiled validator per event type, with formats (`uuid`, `date-time`) checked.
fn validators() -> &'static HashMap<&'static str, jsonschema::Validator> {
    static VALIDATORS: OnceLock<HashMap<&'static str, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        KINDS
            .iter()
            .map(|kind| {
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&contract::schema::of(kind))
                    .expect("the contract's schemas compile");
                (kind.name, validator)
            })
            .collect()
    })
}

/// Whether the contract knows `event_type`.
pub fn is_known(event_type: &str) -> bool {
    validators().contains_key(event_type)
}

/// Checks `body` against `event_type`'s schema.
pub fn check(event_type: &str, body: &serde_json::Value) -> Result<(), SchemaCheckError> {
    let validator = validators()
        .get(event_type)
        .ok_or_else(|| SchemaCheckError::UnknownEventType(event_type.to_owned()))?;
    let errors: Vec<(String, String)> = validator
        .iter_errors(body)
        .map(|error| (error.instance_path().to_string(), error.to_string()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SchemaCheckError::Mismatch {
            event_type: event_type.to_owned(),
            errors,
        })
    }
}

/// The event type of a routing key, for a dead letter that carries no `type`.
pub fn event_type_of_routing_key(routing_key: &str) -> Option<&'static str> {
    KINDS
        .iter()
        .find(|kind| kind.routing_key == routing_key)
        .map(|kind| kind.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> serde_json::Value {
        let index = KINDS.iter().position(|kind| kind.name == name).unwrap();
        serde_json::from_slice(&contract::examples::all()[index].to_json()).unwrap()
    }

    #[test]
    fn a_contract_body_passes_and_a_broken_one_says_where() {
        let mut body = example("OrderCreated");
        assert_eq!(check("OrderCreated", &body), Ok(()));
        body["items"][0]["quantity"] = "2".into();
        let Err(SchemaCheckError::Mismatch { errors, .. }) = check("OrderCreated", &body) else {
            panic!("a quantity as a string passed");
        };
        assert_eq!(errors[0].0, "/items/0/quantity", "{errors:?}");
        body["items"][0]["quantity"] = 2.into();
        body["event_id"] = "not-a-uuid".into();
        assert!(check("OrderCreated", &body).is_err(), "formats are checked");
    }

    #[test]
    fn an_unknown_event_type_has_no_schema() {
        assert!(!is_known("Mystery"));
        assert_eq!(
            check("Mystery", &serde_json::json!({})),
            Err(SchemaCheckError::UnknownEventType("Mystery".into()))
        );
        assert_eq!(
            event_type_of_routing_key("order.created"),
            Some("OrderCreated")
        );
    }
}
