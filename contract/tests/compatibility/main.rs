//! The compatibility gate: each event's schema, as the code generates it now, against the
//! released copy in `contract/schemas/released/`. A change that would break a service
//! still running the released version during a rolling deploy fails here (see [`gate`]);
//! adding an optional field passes. The fixture pairs under `tests/fixtures/` show one
//! change of each kind.
//!
//! A breaking change is a new event type instead (README, "Changing an event"). Releasing
//! — once every service runs the current version — is copying `contract/schemas/*.json`
//! into `contract/schemas/released/`.

mod gate;

use contract::events::KINDS;
use gate::breaking_changes;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn contract_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn no_event_changed_incompatibly_since_the_released_schemas() {
    let released_dir = contract_dir().join("schemas/released");
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&released_dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(event) = name.strip_suffix(".json") else {
            continue;
        };
        let Some(kind) = KINDS.iter().find(|kind| kind.name == event) else {
            problems.push(format!(
                "{event} was released and is gone: its consumers still running would wait for it"
            ));
            continue;
        };
        let released = read(&released_dir.join(&name));
        let current = contract::schema::of(kind);
        for change in breaking_changes(&released, &current) {
            problems.push(format!("{event}: {change}"));
        }
    }
    assert!(
        problems.is_empty(),
        "breaking changes since the released schemas:\n  {}\n\
         Publish a new event type instead (README, \"Changing an event\"); or, once no service \
         runs the released version, release: cp contract/schemas/*.json contract/schemas/released/",
        problems.join("\n  ")
    );
}

/// The breaks the gate finds in one fixture pair.
fn breaks_in(fixture: &str) -> Vec<String> {
    let dir = contract_dir().join("tests/fixtures").join(fixture);
    breaking_changes(
        &read(&dir.join("released.json")),
        &read(&dir.join("current.json")),
    )
    .into_iter()
    .map(|change| change.to_string())
    .collect()
}

/// Asserts the fixture's breaks are exactly `expected`, each given as the start of its text.
fn assert_breaks(fixture: &str, expected: &[&str]) {
    let found = breaks_in(fixture);
    assert_eq!(
        found.len(),
        expected.len(),
        "{fixture}: found {found:#?}, expected {expected:?}"
    );
    for (found, expected) in found.iter().zip(expected) {
        assert!(
            found.starts_with(expected),
            "{fixture}: {found:?} is not {expected:?}…"
        );
    }
}

#[test]
fn added_optional_fields_pass_the_gate() {
    assert_breaks("additive_optional_fields", &[]);
}

#[test]
fn a_removed_field_fails_the_gate() {
    assert_breaks("removed_field", &["attempts: removed (or renamed)"]);
}

#[test]
fn a_renamed_field_fails_the_gate() {
    assert_breaks(
        "renamed_field",
        &["reason: removed (or renamed)", "cause: new required field"],
    );
}

#[test]
fn a_changed_type_fails_the_gate() {
    assert_breaks(
        "changed_type",
        &[r#"attempts: type changed from {"integer"} to {"string"}"#],
    );
}

#[test]
fn a_changed_type_inside_a_referenced_definition_fails_the_gate() {
    assert_breaks(
        "changed_type_in_a_nested_definition",
        &[r#"items[].quantity: type changed from {"integer"} to {"number"}"#],
    );
}

#[test]
fn a_new_required_field_fails_the_gate() {
    assert_breaks("new_required_field", &["currency: new required field"]);
}

#[test]
fn a_narrowed_enum_fails_the_gate() {
    assert_breaks("narrowed_enum", &[r#"reason: narrowed enum: "TIMEOUT""#]);
}

#[test]
fn a_widened_enum_fails_the_gate_as_released_readers_reject_the_new_value() {
    assert_breaks(
        "widened_enum",
        &[r#"reason: widened enum: "FRAUD_SUSPECTED""#],
    );
}

#[test]
fn a_required_field_made_optional_fails_the_gate() {
    assert_breaks("required_field_made_optional", &["reason: became optional"]);
}

#[test]
fn every_fixture_pair_is_one_of_the_cases_above() {
    let mut fixtures: Vec<String> = std::fs::read_dir(contract_dir().join("tests/fixtures"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fixtures.sort();
    assert_eq!(
        fixtures,
        [
            "additive_optional_fields",
            "changed_type",
            "changed_type_in_a_nested_definition",
            "narrowed_enum",
            "new_required_field",
            "removed_field",
            "renamed_field",
            "required_field_made_optional",
            "widened_enum",
        ]
    );
}

/// `OrderConfirmed` as a next version might be: one optional field more.
#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct OrderConfirmedNext {
    order_id: uuid::Uuid,
    customer_id: String,
    total_amount: contract::money::Money,
    /// ISO 4217; absent means `usd`.
    currency: Option<String>,
}

#[test]
fn a_next_version_with_an_optional_field_passes_the_gate_and_each_version_reads_the_other() {
    let today = KINDS.iter().find(|k| k.name == "OrderConfirmed").unwrap();
    let next = contract::events::EventKind {
        payload_schema: schemars::SchemaGenerator::root_schema_for::<OrderConfirmedNext>,
        ..*today
    };
    let changes = breaking_changes(&contract::schema::of(today), &contract::schema::of(&next));
    assert!(changes.is_empty(), "{changes:?}");

    // A reader of the next version reads today's body, whose optional field is missing…
    let today_body = contract::examples::all()
        .into_iter()
        .find(|e| e.event.name() == "OrderConfirmed")
        .unwrap()
        .to_json();
    let read: OrderConfirmedNext = serde_json::from_slice(&today_body).unwrap();
    assert_eq!(read.currency, None);
    // …and today's readers read the next version's, ignoring the field they do not know.
    let mut next_body: Value = serde_json::from_slice(&today_body).unwrap();
    next_body["currency"] = "eur".into();
    let read = contract::Envelope::from_json(next_body.to_string().as_bytes()).unwrap();
    assert_eq!(read.event.name(), "OrderConfirmed");
}
