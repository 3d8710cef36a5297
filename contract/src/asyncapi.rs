//! The AsyncAPI 3.0 document of the saga's messages, generated from this crate: the
//! exchange, one channel per routing key, each event's payload schema and headers, the
//! AMQP bindings of CONTRACT §4, and per service the operations that publish (`send`) and
//! consume (`receive`) each event. `contract/asyncapi.json` is [`document`] for the default
//! exchange, checked in (`tests/drift.rs`); order-service serves the one of its exchange at
//! `GET /asyncapi.json`.
//!
//! The payload schemas are [`crate::schema`]'s, with their `$defs` moved to
//! `components.schemas` (AsyncAPI's schema format is a superset of JSON Schema draft 7,
//! which resolves a `$ref` against the whole document).

use crate::events::{EventKind, KINDS};
use crate::examples;
use crate::service::Service;
use serde_json::{Map, Value, json};

/// The exchange's name when `AMQP_EXCHANGE` is not set.
pub const DEFAULT_EXCHANGE: &str = "orders";

/// Version of the AMQP bindings used (channel, operation and message).
const AMQP_BINDING: &str = "0.3.0";

/// The document for the stack on `exchange`.
pub fn document(exchange: &str) -> Value {
    let mut schemas = Map::new();
    let mut messages = Map::new();
    let mut channels = Map::new();
    let mut operations = Map::new();
    for (kind, example) in KINDS.iter().zip(examples::all()) {
        let payload = payload_schema(kind, &mut schemas);
        schemas.insert(kind.name.into(), payload);
        let example = serde_json::from_slice::<Value>(&example.to_json()).expect("JSON");
        messages.insert(kind.name.into(), message(kind, example));
        channels.insert(kind.routing_key.into(), channel(kind, exchange));
        let publisher = kind.publisher;
        operations.insert(
            operation_id(publisher, "send", kind),
            json!({
                "action": "send",
                "title": format!("{} publishes {}", publisher.name(), kind.name),
                "channel": {"$ref": channel_ref(kind)},
                "messages": [{"$ref": format!("{}/messages/{}", channel_ref(kind), kind.name)}],
                "tags": [{"name": publisher.name()}],
                "bindings": {"amqp": {
                    "deliveryMode": 2,
                    "mandatory": true,
                    "timestamp": true,
                    "bindingVersion": AMQP_BINDING,
                }},
            }),
        );
        for consumer in consumers_of(kind) {
            let queue = crate::queues::queue(exchange, consumer);
            operations.insert(
                operation_id(consumer, "receive", kind),
                json!({
                    "action": "receive",
                    "title": format!("{} consumes {}", consumer.name(), kind.name),
                    "description": format!(
                        "From its queue `{queue}` (bound to `{}`), acknowledged once its \
                         effects are committed; a message that cannot be handled goes, \
                         after retries, to `{}`.",
                        kind.routing_key,
                        crate::queues::dead_letter_queue(exchange, consumer),
                    ),
                    "channel": {"$ref": channel_ref(kind)},
                    "messages": [{"$ref": format!("{}/messages/{}", channel_ref(kind), kind.name)}],
                    "tags": [{"name": consumer.name()}],
                    "bindings": {"amqp": {"ack": true, "bindingVersion": AMQP_BINDING}},
                    "x-queue": queue,
                }),
            );
        }
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Order saga events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "The events four services exchange over the durable topic exchange \
                 `{exchange}` (`AMQP_EXCHANGE`) to run an order's saga by choreography. \
                 Each event is one persistent JSON message whose routing key is its \
                 channel; its metadata travels again as AMQP properties and headers \
                 (CONTRACT §4). Readers ignore fields they do not know: a field is only \
                 ever added, as optional."
            ),
            "tags": Service::ALL.map(|s| json!({"name": s.name()})).to_vec(),
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "description": "RabbitMQ, as `AMQP_URL` names it (several nodes of one \
                                cluster may be listed); `amqps` with TLS.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    })
}

/// The services whose queues are bound to `kind`'s routing key.
pub fn consumers_of(kind: &EventKind) -> Vec<Service> {
    Service::ALL
        .into_iter()
        .filter(|service| service.subscriptions().contains(&kind.routing_key))
        .collect()
}

/// `order-service.send.OrderCreated`, …
fn operation_id(service: Service, action: &str, kind: &EventKind) -> String {
    format!("{}.{action}.{}", service.name(), kind.name)
}

fn channel_ref(kind: &EventKind) -> String {
    format!("#/channels/{}", kind.routing_key)
}

fn channel(kind: &EventKind, exchange: &str) -> Value {
    json!({
        "address": kind.routing_key,
        "title": kind.name,
        "messages": {kind.name: {"$ref": format!("#/components/messages/{}", kind.name)}},
        "bindings": {"amqp": {
            "is": "routingKey",
            "exchange": {
                "name": exchange,
                "type": "topic",
                "durable": true,
                "autoDelete": false,
                "vhost": "/",
            },
            "bindingVersion": AMQP_BINDING,
        }},
    })
}

fn message(kind: &EventKind, example: Value) -> Value {
    let description = crate::schema::of(kind)["description"].clone();
    json!({
        "name": kind.name,
        "title": kind.name,
        "summary": description,
        "contentType": "application/json",
        "correlationId": {
            "description": "The order: also the AMQP correlation_id",
            "location": "$message.payload#/order_id",
        },
        "headers": headers(kind),
        "payload": {"$ref": format!("#/components/schemas/{}", kind.name)},
        "bindings": {"amqp": {"messageType": kind.name, "bindingVersion": AMQP_BINDING}},
        "examples": [{"name": kind.name, "payload": example}],
    })
}

/// The AMQP properties and headers every message carries (CONTRACT §4, §10).
fn headers(kind: &EventKind) -> Value {
    let uuid =
        |description: &str| json!({"type": "string", "format": "uuid", "description": description});
    json!({
        "type": "object",
        "description": "AMQP message properties (content_type, delivery_mode, message_id, \
                        correlation_id, type, app_id, timestamp) and application headers \
                        (causation_id, traceparent, tracestate).",
        "properties": {
            "content_type": {"const": "application/json", "description": "AMQP property"},
            "delivery_mode": {"const": 2, "description": "AMQP property: persistent"},
            "message_id": uuid("AMQP property: the body's event_id"),
            "correlation_id": uuid("AMQP property: the body's order_id"),
            "type": {"const": kind.name, "description": "AMQP property: the body's event_type"},
            "app_id": {"const": kind.publisher.name(), "description": "AMQP property: the publishing service"},
            "timestamp": {"type": "integer", "minimum": 0,
                          "description": "AMQP property: when it happened, in seconds since 1970"},
            "causation_id": uuid("Header: the event_id of the event that caused this one; \
                                  absent when no event did (an order placed, a saga timed out)"),
            "traceparent": {"type": "string", "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                            "description": "Header: W3C Trace Context of the saga's trace"},
            "tracestate": {"type": "string", "description": "Header: W3C Trace Context, when present"},
        },
        "required": ["content_type", "delivery_mode", "message_id", "correlation_id", "type", "app_id", "timestamp"],
    })
}

/// `kind`'s schema for the document: its `$defs` go to `components.schemas` (`shared`),
/// and its references with them.
fn payload_schema(kind: &EventKind, shared: &mut Map<String, Value>) -> Value {
    let mut schema = crate::schema::of(kind);
    let object = schema.as_object_mut().expect("a schema is an object");
    object.remove("$schema");
    if let Some(Value::Object(definitions)) = object.remove("$defs") {
        for (name, mut definition) in definitions {
            point_refs_at_components(&mut definition);
            if let Some(known) = shared.get(&name) {
                assert_eq!(known, &definition, "two events define {name} differently");
            }
            shared.insert(name, definition);
        }
    }
    point_refs_at_components(&mut schema);
    schema
}

fn point_refs_at_components(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object.iter_mut() {
                match inner {
                    Value::String(target) if key == "$ref" => {
                        if let Some(name) = target.strip_prefix("#/$defs/") {
                            *target = format!("#/components/schemas/{name}");
                        }
                    }
                    _ => point_refs_at_components(inner),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(point_refs_at_components),
        _ => {}
    }
}

/// The document as it is written to `contract/asyncapi.json`.
pub fn to_file(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(document).expect("a document serializes");
    text.push('\n');
    text
}
