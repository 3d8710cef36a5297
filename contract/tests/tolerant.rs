//! Readers are tolerant: every event is read with fields it does not know, at the top and
//! inside its items, and no type of the published language refuses them.

use serde_json::{Value, json};
use std::path::Path;

/// `body` with a field the reader does not know in every object, as a next version might
/// add them.
fn with_unknown_fields(mut body: Value) -> Value {
    fn add(value: &mut Value) {
        match value {
            Value::Object(object) => {
                for inner in object.values_mut() {
                    add(inner);
                }
                object.insert("next_version_field".into(), json!({"nested": [1, "two"]}));
            }
            Value::Array(items) => items.iter_mut().for_each(add),
            _ => {}
        }
    }
    add(&mut body);
    body
}

#[test]
fn every_event_is_read_with_fields_it_does_not_know() {
    for example in contract::examples::all() {
        let body = with_unknown_fields(serde_json::from_slice(&example.to_json()).unwrap());
        let read = contract::Envelope::from_json(body.to_string().as_bytes())
            .unwrap_or_else(|error| panic!("{}: {error} in {body}", example.event.name()));
        assert_eq!(read, example);
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_event_type_refuses_unknown_fields_and_no_schema_forbids_them() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("deny_unknown_fields"),
            "{} refuses unknown fields",
            file.display()
        );
    }
    for (event, schema) in contract::schema::all() {
        assert!(
            !schema
                .to_string()
                .contains(r#""additionalProperties":false"#),
            "{event}'s schema forbids unknown fields"
        );
    }
}
