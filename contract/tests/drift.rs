//! The checked-in JSON Schemas (`contract/schemas/`) and AsyncAPI document
//! (`contract/asyncapi.json`) are what the code generates, and the code's own bodies
//! validate against the schemas. `UPDATE_CONTRACT=1 cargo test -p contract`
//! writes the files afresh after a change to the events (then review the diff: the
//! compatibility gate compares them with `schemas/released/`).

use contract::schema;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_CONTRACT").is_some_and(|v| v == "1")
}

/// The files directly in `dir` ending in `.json`, by name.
fn json_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_checked_in_schemas_are_the_ones_the_code_generates() {
    let dir = schemas_dir();
    let generated = schema::all();
    if updating() {
        std::fs::create_dir_all(&dir).unwrap();
        for (event, schema) in &generated {
            std::fs::write(dir.join(schema::file_name(event)), schema::to_file(schema)).unwrap();
        }
    }
    let mut expected: Vec<String> = generated
        .iter()
        .map(|(e, _)| schema::file_name(e))
        .collect();
    expected.sort();
    assert_eq!(
        json_files(&dir),
        expected,
        "one schema file per event, no other (UPDATE_CONTRACT=1 writes them; remove stale ones)"
    );
    for (event, schema) in generated {
        let path = dir.join(schema::file_name(event));
        let text = std::fs::read_to_string(&path).unwrap();
        let checked_in: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            checked_in,
            schema,
            "{} differs from what the code generates; run UPDATE_CONTRACT=1 cargo test -p contract",
            path.display()
        );
    }
}

#[test]
fn the_checked_in_asyncapi_document_is_the_one_the_code_generates() {
    use contract::asyncapi;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("asyncapi.json");
    let generated = asyncapi::document(asyncapi::DEFAULT_EXCHANGE);
    if updating() {
        std::fs::write(&path, asyncapi::to_file(&generated)).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let checked_in: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        checked_in, generated,
        "contract/asyncapi.json differs from what the code generates; run UPDATE_CONTRACT=1 cargo test -p contract"
    );
}

#[test]
fn every_schema_is_valid_draft_2020_12_and_the_code_s_bodies_validate_against_it() {
    let examples = contract::examples::all();
    for ((event, schema), example) in schema::all().into_iter().zip(examples) {
        jsonschema::draft202012::meta::validate(&schema)
            .unwrap_or_else(|error| panic!("{event}'s schema is not valid: {error}"));
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let body: Value = serde_json::from_slice(&example.to_json()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{event}: {errors:?} in {body}");
    }
}

#[test]
fn a_body_that_breaks_the_contract_fails_its_schema() {
    let schema = schema::of(&contract::events::KINDS[0]);
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut body: Value = serde_json::from_slice(&contract::examples::all()[0].to_json()).unwrap();
    assert!(validator.is_valid(&body));
    body["items"][0]["quantity"] = "2".into();
    assert!(!validator.is_valid(&body), "a quantity as a string");
    body["items"][0]["quantity"] = 2.into();
    body.as_object_mut().unwrap().remove("customer_id");
    assert!(!validator.is_valid(&body), "a required field missing");
}
