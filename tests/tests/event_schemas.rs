//! Every event the real services publish validates against its checked-in JSON Schema
//! (`contract/schemas/<event>.json`, which `contract/tests/drift.rs` holds to the code):
//! one saga of each ending, every body on the exchange checked.

use saga_tests::provider_stub::{Fault, ProviderStub};
use saga_tests::{Service, TestStack, contract, eventually};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The checked-in schema of each event, by name.
fn checked_in_schemas() -> BTreeMap<String, Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../contract/schemas");
    contract::EVENTS
        .iter()
        .map(|event| {
            let path = format!("{dir}/{}.json", event.name);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            (event.name.to_owned(), serde_json::from_str(&text).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn every_event_the_services_publish_validates_against_its_checked_in_schema() {
    let stub = ProviderStub::start().await;
    let stack = TestStack::builder()
        .service_env(Service::Payment, "PAYMENT_PROVIDER_URL", &stub.url())
        .service_env(Service::Payment, "PAYMENT_PROVIDER_TIMEOUT_MS", "20000")
        .service_env(Service::Payment, "PAYMENT_MAX_ATTEMPTS", "1")
        .service_env(Service::Order, "SAGA_TIMEOUT_SECS", "3")
        .start()
        .await;

    // One order at a time, each under the provider's behaviour its ending needs.
    let paid = stack.place_order("c-paid", &[("product-A", 2)], 30.0).await;
    assert_eq!(
        stack.final_order(paid["id"].as_str().unwrap()).await["status"],
        "COMPLETED"
    );
    let short = stack.place_order("c-short", &[("product-C", 1)], 5.0).await;
    assert_eq!(
        stack.final_order(short["id"].as_str().unwrap()).await["cancellation_reason"],
        "INVENTORY_UNAVAILABLE"
    );
    stub.set_declines(|_, _| true);
    let declined = stack
        .place_order("c-declined", &[("product-A", 1)], 15.0)
        .await;
    assert_eq!(
        stack.final_order(declined["id"].as_str().unwrap()).await["cancellation_reason"],
        "PAYMENT_FAILED"
    );
    // The charge takes longer than the saga may last: it succeeds after the order timed
    // out, and is refunded.
    stub.set_declines(|_, _| false);
    stub.set_faults(|request| {
        (request.try_of_key == 1).then_some(Fault::Slow(Duration::from_secs(6)))
    });
    let late = stack.place_order("c-late", &[("product-B", 1)], 12.5).await;
    let late_id = late["id"].as_str().unwrap().to_owned();
    assert_eq!(
        stack.final_order(&late_id).await["cancellation_reason"],
        "TIMEOUT"
    );
    eventually("the refund", Duration::from_secs(30), || async {
        match stack.payment(&late_id).await {
            Some(payment) if payment["status"] == "REFUNDED" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    stack.assert_invariants().await;

    let schemas = checked_in_schemas();
    let validators: BTreeMap<&str, jsonschema::Validator> = schemas
        .iter()
        .map(|(name, schema)| {
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(schema)
                .unwrap_or_else(|error| panic!("{name}'s schema: {error}"));
            (name.as_str(), validator)
        })
        .collect();
    let mut seen = BTreeSet::new();
    for event in stack.broker.deliveries().await {
        let event_type = event.event_type();
        let validator = validators
            .get(event_type.as_str())
            .unwrap_or_else(|| panic!("{event_type:?} has no schema"));
        let body = event.json();
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{event_type}: {errors:?} in {body}");
        seen.insert(event_type);
    }
    let all: BTreeSet<String> = contract::EVENTS.iter().map(|e| e.name.to_owned()).collect();
    assert_eq!(seen, all, "one of each event went through the services");
    stack.cleanup().await;
}
