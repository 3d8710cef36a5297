//! The JSON Schema (draft 2020-12) of every event's whole body, generated from the Rust
//! types with `schemars`: the payload struct's fields plus the common three. The files in
//! `contract/schemas/` are these, checked in (`tests/drift.rs` holds them to the code);
//! `contract/schemas/released/` keeps the last released copy, against which the
//! compatibility gate (`tests/compatibility.rs`) checks every change.
//!
//! No schema forbids other properties: a reader ignores fields it does not know, so a
//! publisher may add optional ones before every consumer knows them.

use crate::events::{EventKind, KINDS};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// The JSON Schema of a body of `kind`.
pub fn of(kind: &EventKind) -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = (kind.payload_schema)(&mut generator).to_value();
    let object = schema
        .as_object_mut()
        .expect("an event's schema is an object");
    let own_properties = object.remove("properties").unwrap_or_else(|| json!({}));
    let mut properties = Map::new();
    properties.insert(
        "event_id".into(),
        json!({"type": "string", "format": "uuid",
               "description": "Fresh for every event; also the AMQP message_id"}),
    );
    properties.insert(
        "event_type".into(),
        json!({"type": "string", "const": kind.name,
               "description": "The event's name; also the AMQP type"}),
    );
    properties.insert(
        "timestamp".into(),
        json!({"type": "string", "format": "date-time",
               "description": "When it happened: RFC 3339 in UTC, with microseconds"}),
    );
    if let Value::Object(own) = own_properties {
        properties.extend(own);
    }
    let mut required: Vec<Value> = ["event_id", "event_type", "timestamp"]
        .map(Value::from)
        .to_vec();
    if let Some(Value::Array(own)) = object.remove("required") {
        required.extend(own);
    }
    object.insert("properties".into(), Value::Object(properties));
    object.insert("required".into(), Value::Array(required));
    schema
}

/// Every event's schema, by event name, in the order of [`KINDS`].
pub fn all() -> Vec<(&'static str, Value)> {
    KINDS.iter().map(|kind| (kind.name, of(kind))).collect()
}

/// The file a schema is checked in as, under `contract/schemas/`.
pub fn file_name(event: &str) -> String {
    format!("{event}.json")
}

/// A schema as it is written to its file: pretty JSON and a final newline.
pub fn to_file(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema serializes");
    text.push('\n');
    text
}
