//! The §4 metadata of everything the tap saw: routing key, properties, fields, publisher
//! and causation, checked against the contract's literal spelling ([`crate::contract`]).

use super::Tapped;
use crate::contract::{CAUSATION_HEADER, EVENTS, app_id, causes};
use serde_json::Value;

/// What is wrong with the metadata of `events` (everything the tap saw that parses as an
/// event): routing key, properties, fields, publisher and causation, per §4.
pub fn metadata_violations(events: &[Tapped]) -> Vec<String> {
    let mut found = Vec::new();
    let parsed: Vec<(&Tapped, Value)> = events
        .iter()
        .filter_map(|e| Some((e, serde_json::from_slice::<Value>(&e.body).ok()?)))
        .collect();
    for (event, body) in &parsed {
        let Some(event_type) = body["event_type"].as_str() else {
            continue;
        };
        let Some(spec) = EVENTS.iter().find(|s| s.name == event_type) else {
            continue;
        };
        let p = &event.properties;
        let mut wrong = |what: String| found.push(format!("{event_type} {body}: {what}"));
        let text = |value: Option<String>| value.unwrap_or_default();
        if event.routing_key != spec.routing_key {
            wrong(format!("routing key {}", event.routing_key));
        }
        if p.delivery_mode() != &Some(2) {
            wrong(format!("delivery mode {:?}", p.delivery_mode()));
        }
        if text(p.content_type().as_ref().map(|c| c.to_string())) != "application/json" {
            wrong(format!("content type {:?}", p.content_type()));
        }
        if text(p.message_id().as_ref().map(|m| m.to_string())) != body["event_id"] {
            wrong(format!("message_id {:?}", p.message_id()));
        }
        if text(p.kind().as_ref().map(|t| t.to_string())) != event_type {
            wrong(format!("type {:?}", p.kind()));
        }
        if text(p.correlation_id().as_ref().map(|c| c.to_string())) != body["order_id"] {
            wrong(format!("correlation_id {:?}", p.correlation_id()));
        }
        if text(p.app_id().as_ref().map(|a| a.to_string())) != app_id(spec.publisher) {
            wrong(format!("app_id {:?}", p.app_id()));
        }
        if p.timestamp().is_none() {
            wrong("no timestamp property".into());
        }
        let timestamp = body["timestamp"].as_str().unwrap_or_default();
        if chrono::DateTime::parse_from_rfc3339(timestamp).is_err() || !timestamp.ends_with('Z') {
            wrong(format!("timestamp {timestamp:?} is not RFC 3339 UTC"));
        }
        if uuid::Uuid::parse_str(body["event_id"].as_str().unwrap_or_default()).is_err() {
            wrong("event_id is not a UUID".into());
        }
        for field in spec.fields {
            if body.get(field).is_none_or(Value::is_null) {
                wrong(format!("no {field}"));
            }
        }
        let causation = p
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get(CAUSATION_HEADER).cloned())
            .map(|v| match v {
                lapin::types::AMQPValue::LongString(s) => s.to_string(),
                other => format!("{other:?}"),
            });
        match (event_type, causation) {
            ("OrderCreated", None) => {}
            ("OrderCreated", Some(c)) => wrong(format!("a causation_id {c}")),
            (_, None) => wrong("no causation_id header".into()),
            (_, Some(cause_id)) => {
                let cause = parsed
                    .iter()
                    .find(|(_, b)| b["event_id"] == cause_id.as_str());
                match cause {
                    Some((_, cause))
                        if causes(event_type)
                            .contains(&cause["event_type"].as_str().unwrap_or_default())
                            && cause["order_id"] == body["order_id"] => {}
                    Some((_, cause)) => wrong(format!(
                        "caused by {} of order {}",
                        cause["event_type"], cause["order_id"]
                    )),
                    None => wrong(format!("causation_id {cause_id} is no event seen")),
                }
            }
        }
    }
    found
}

impl crate::TestStack {
    /// Every event seen so far carries the metadata of §4; returns the event types seen.
    pub async fn assert_event_metadata(&self) -> std::collections::BTreeSet<String> {
        let events = self.broker.deliveries().await;
        let violations = metadata_violations(&events);
        assert!(violations.is_empty(), "{}", violations.join("\n"));
        events
            .iter()
            .filter_map(|e| serde_json::from_slice::<Value>(&e.body).ok())
            .filter_map(|b| b["event_type"].as_str().map(str::to_owned))
            .collect()
    }
}
