//! The AsyncAPI document of the saga's messages (`contract/asyncapi.json`): valid AsyncAPI
//! 3.0 by the AsyncAPI initiative's own parser (npm `@asyncapi/parser`, installed by
//! `scripts/test` into `target/asyncapi-parser`), every channel, message and operation as
//! CONTRACT §4 spells them, and served by order-service for its exchange.

use reqwest::StatusCode;
use saga_tests::{Service, TestStack, contract};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The parser's report on the checked-in document: its diagnostics and its model.
fn parse_with_the_asyncapi_parser() -> Value {
    let parser_dir = std::env::var_os("ASYNCAPI_PARSER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/asyncapi-parser"));
    assert!(
        parser_dir.join("node_modules/@asyncapi/parser").is_dir(),
        "the AsyncAPI parser is not in {}: run tests/asyncapi/install.sh (scripts/test does)",
        parser_dir.display()
    );
    let output = std::process::Command::new("node")
        .arg(workspace().join("tests/asyncapi/validate.mjs"))
        .arg(workspace().join("contract/asyncapi.json"))
        .env("ASYNCAPI_PARSER_DIR", &parser_dir)
        .output()
        .expect("node runs (Node.js 18 or newer)");
    assert!(
        output.status.success(),
        "the parser failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the parser's report is JSON")
}

/// The `(id, action, channel address, message)` of every operation the parser read.
fn operations(report: &Value) -> BTreeSet<(String, String, String, String)> {
    report["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|operation| {
            let one = |field: &str| {
                let list = operation[field].as_array().unwrap();
                assert_eq!(list.len(), 1, "{operation}");
                list[0].as_str().unwrap().to_owned()
            };
            (
                operation["id"].as_str().unwrap().to_owned(),
                operation["action"].as_str().unwrap().to_owned(),
                one("channels"),
                one("messages"),
            )
        })
        .collect()
}

#[test]
fn the_document_is_valid_asyncapi_3_and_names_every_channel_message_and_operation_of_the_contract()
{
    let report = parse_with_the_asyncapi_parser();
    let problems: Vec<&Value> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error" || d["severity"] == "warning")
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(report["parsed"], true);
    assert_eq!(report["version"], "3.0.0");

    let channels: BTreeSet<(String, Vec<String>)> = report["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|channel| {
            let messages = channel["messages"].as_array().unwrap();
            (
                channel["address"].as_str().unwrap().to_owned(),
                messages
                    .iter()
                    .map(|m| m.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, Vec<String>)> = contract::EVENTS
        .iter()
        .map(|e| (e.routing_key.to_owned(), vec![e.name.to_owned()]))
        .collect();
    assert_eq!(
        channels, expected,
        "one channel per routing key, with its event"
    );

    let messages: BTreeSet<&str> = report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(messages, contract::EVENTS.iter().map(|e| e.name).collect());

    let mut expected = BTreeSet::new();
    for event in &contract::EVENTS {
        let operation = |service: Service, action: &str| {
            (
                format!("{}.{action}.{}", contract::app_id(service), event.name),
                action.to_owned(),
                event.routing_key.to_owned(),
                event.name.to_owned(),
            )
        };
        expected.insert(operation(event.publisher, "send"));
        for consumer in event.consumers {
            expected.insert(operation(*consumer, "receive"));
        }
    }
    assert_eq!(
        operations(&report),
        expected,
        "each publisher sends its events, each consumer receives its"
    );
}

#[test]
fn the_document_says_how_each_message_travels() {
    let path = workspace().join("contract/asyncapi.json");
    let document: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for event in &contract::EVENTS {
        let channel = &document["channels"][event.routing_key];
        assert_eq!(channel["bindings"]["amqp"]["exchange"]["name"], "orders");
        assert_eq!(channel["bindings"]["amqp"]["exchange"]["type"], "topic");
        let message = &document["components"]["messages"][event.name];
        assert_eq!(message["contentType"], "application/json");
        let headers = &message["headers"]["properties"];
        for name in [
            "message_id",
            "correlation_id",
            "causation_id",
            "traceparent",
            "type",
            "app_id",
            "timestamp",
        ] {
            assert!(headers.get(name).is_some(), "{}: no {name}", event.name);
        }
        assert_eq!(
            headers["app_id"]["const"],
            contract::app_id(event.publisher)
        );
        assert_eq!(headers["delivery_mode"]["const"], 2);
        let send = &document["operations"]
            [format!("{}.send.{}", contract::app_id(event.publisher), event.name)];
        assert_eq!(send["bindings"]["amqp"]["deliveryMode"], 2, "persistent");
        let payload = &document["components"]["schemas"][event.name];
        for field in event.fields {
            assert!(
                payload["properties"].get(*field).is_some(),
                "{}: no {field}",
                event.name
            );
        }
    }
}

#[tokio::test]
async fn order_service_serves_the_document_of_its_exchange_and_links_it_from_its_docs() {
    let stack = TestStack::builder().only(&[Service::Order]).start().await;
    let (status, served) = stack.get_json(Service::Order, "/asyncapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, ::contract::asyncapi::document(&stack.name));
    assert_eq!(
        served["channels"]["order.created"]["bindings"]["amqp"]["exchange"]["name"],
        stack.name.as_str()
    );

    // The Swagger UI at /docs shows the OpenAPI description, which links the document.
    let (_, openapi) = stack.get_json(Service::Order, "/openapi.json").await;
    let description = openapi["info"]["description"].as_str().unwrap();
    assert!(description.contains("(/asyncapi.json)"), "{description}");
    let dashboard = reqwest::get(stack.url(Service::Order, "/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dashboard.contains(r#"href="/asyncapi.json""#));
    stack.cleanup().await;
}
