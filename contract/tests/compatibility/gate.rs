//! The comparison behind the compatibility gate: what in a schema's change would break a
//! service still running the released version, over the JSON Schema subset `schemars`
//! writes (`type`, `format`, `const`, `enum`, `properties`, `required`, `items`, `$ref`
//! into `$defs`, and `anyOf`/`oneOf`/`allOf` for what may come).
//!
//! During a rolling deploy, messages written by either version are read by either. So a
//! change breaks when a message the released version writes fails the current schema
//! (a new required field, a narrowed enum, a changed type), or one the current version
//! writes fails the released (a removed or renamed field, a field made optional, a widened
//! enum: the released readers reject a value they do not know). Adding an optional field
//! breaks neither: readers ignore what they do not know. Descriptions, titles and examples
//! are not compared.

use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

/// One breaking change, located by a path into the body (`items[].quantity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub at: String,
    pub what: String,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.at.is_empty() {
            "the body"
        } else {
            &self.at
        };
        write!(f, "{at}: {}", self.what)
    }
}

/// The breaking changes from `released` to `current` (two whole schemas, each with its
/// own `$defs`).
pub fn breaking_changes(released: &Value, current: &Value) -> Vec<Break> {
    let mut found = Vec::new();
    Compare {
        released,
        current,
        found: &mut found,
    }
    .node(released, current, "", 0);
    found
}

/// How deep references are followed: schemars' types do not recurse, and a schema that
/// did would be cut here rather than loop.
const MAX_DEPTH: usize = 32;

struct Compare<'a> {
    released: &'a Value,
    current: &'a Value,
    found: &'a mut Vec<Break>,
}

impl Compare<'_> {
    fn report(&mut self, at: &str, what: String) {
        self.found.push(Break {
            at: at.to_owned(),
            what,
        });
    }

    fn node(&mut self, old: &Value, new: &Value, at: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return self.report(at, "references nested too deep to compare".into());
        }
        let old = resolve(self.released, old);
        let new = resolve(self.current, new);
        let types = (types(old), types(new));
        if types.0 != types.1 {
            self.report(
                at,
                format!("type changed from {:?} to {:?}", types.0, types.1),
            );
            return;
        }
        for keyword in ["format", "const"] {
            if old.get(keyword) != new.get(keyword) {
                self.report(
                    at,
                    format!(
                        "{keyword} changed from {} to {}",
                        shown(old.get(keyword)),
                        shown(new.get(keyword))
                    ),
                );
            }
        }
        self.enumeration(old, new, at);
        self.object(old, new, at, depth);
        if let (Some(old_items), Some(new_items)) = (old.get("items"), new.get("items")) {
            self.node(old_items, new_items, &format!("{at}[]"), depth + 1);
        } else if old.get("items").is_some() != new.get("items").is_some() {
            self.report(at, "the array's items changed".into());
        }
        for keyword in ["anyOf", "oneOf", "allOf"] {
            match (array(old, keyword), array(new, keyword)) {
                (Some(a), Some(b)) if a.len() == b.len() => {
                    for (index, (a, b)) in a.iter().zip(b).enumerate() {
                        self.node(a, b, &format!("{at}({keyword} {index})"), depth + 1);
                    }
                }
                (None, None) => {}
                _ => self.report(at, format!("its {keyword} alternatives changed")),
            }
        }
    }

    fn enumeration(&mut self, old: &Value, new: &Value, at: &str) {
        let (Some(old_values), Some(new_values)) = (array(old, "enum"), array(new, "enum")) else {
            if old.get("enum").is_some() != new.get("enum").is_some() {
                self.report(at, "became or stopped being an enumeration".into());
            }
            return;
        };
        let removed: Vec<String> = old_values
            .iter()
            .filter(|v| !new_values.contains(v))
            .map(|v| v.to_string())
            .collect();
        if !removed.is_empty() {
            self.report(
                at,
                format!(
                    "narrowed enum: {} no longer allowed, yet the released version sends it",
                    removed.join(", ")
                ),
            );
        }
        let added: Vec<String> = new_values
            .iter()
            .filter(|v| !old_values.contains(v))
            .map(|v| v.to_string())
            .collect();
        if !added.is_empty() {
            self.report(
                at,
                format!(
                    "widened enum: {} unknown to the released version, whose readers reject it",
                    added.join(", ")
                ),
            );
        }
    }

    fn object(&mut self, old: &Value, new: &Value, at: &str, depth: usize) {
        let no_properties = serde_json::Map::new();
        let old_properties = old
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&no_properties);
        let new_properties = new
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&no_properties);
        let (old_required, new_required) = (required(old), required(new));
        let field = |name: &str| {
            if at.is_empty() {
                name.to_owned()
            } else {
                format!("{at}.{name}")
            }
        };
        for (name, old_property) in old_properties {
            match new_properties.get(name) {
                None => self.report(
                    &field(name),
                    "removed (or renamed): readers of the released version need it".into(),
                ),
                Some(new_property) => {
                    self.node(old_property, new_property, &field(name), depth + 1);
                    if old_required.contains(name.as_str()) && !new_required.contains(name.as_str())
                    {
                        self.report(
                            &field(name),
                            "became optional: readers of the released version need it".into(),
                        );
                    }
                }
            }
        }
        for name in &new_required {
            if !old_properties.contains_key(*name) {
                self.report(
                    &field(name),
                    "new required field: the released version does not send it".into(),
                );
            } else if !old_required.contains(name) {
                self.report(
                    &field(name),
                    "became required: the released version may leave it out".into(),
                );
            }
        }
    }
}

/// Follows `$ref`s into `root`'s `$defs` (the only references schemars writes).
fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..MAX_DEPTH {
        let Some(target) = node.get("$ref").and_then(Value::as_str) else {
            return node;
        };
        let found = target
            .strip_prefix("#/")
            .map(|path| {
                path.split('/')
                    .try_fold(root, |value, part| value.get(part))
            })
            .unwrap_or(None);
        match found {
            Some(next) => node = next,
            None => return node,
        }
    }
    node
}

/// The node's `type`, as a set (`"string"` or `["string", "null"]`); empty when unsaid.
fn types(node: &Value) -> BTreeSet<String> {
    match node.get("type") {
        Some(Value::String(one)) => BTreeSet::from([one.clone()]),
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => BTreeSet::new(),
    }
}

fn required(node: &Value) -> BTreeSet<&str> {
    array(node, "required")
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn array<'a>(node: &'a Value, keyword: &str) -> Option<&'a Vec<Value>> {
    node.get(keyword).and_then(Value::as_array)
}

fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "nothing".to_owned(), Value::to_string)
}
