//! Schemathesis generates thousands of requests from each service's live OpenAPI document
//! and checks that none gets a 5xx or a response that breaks the document.

use saga_tests::{Service, TestStack};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// The schemathesis CLI, installed on first use by `tests/schemathesis/install.sh`.
fn schemathesis() -> PathBuf {
    let venv = devstack::bin_dir()
        .unwrap()
        .parent()
        .unwrap()
        .join("schemathesis-venv");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemathesis/install.sh");
    let status = Command::new(script).arg(&venv).status().expect("bash runs");
    assert!(
        status.success(),
        "installing schemathesis failed (needs python3 and PyPI)"
    );
    venv.join("bin/st")
}

/// Runs a bounded, seeded schemathesis session against one service; returns the HAR
/// record of every request it sent.
fn fuzz(stack: &TestStack, service: Service, examples: u32) -> Value {
    let har = stack
        .log_dir()
        .join(format!("schemathesis-{}.har", service.short_name()));
    let output = Command::new(schemathesis())
        .arg("run")
        .arg(stack.url(service, "/openapi.json"))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance",
            "--max-examples",
            &examples.to_string(),
            "--seed",
            "20261125",
            // One worker: with several, CPython 3.11's ast.parse races inside hypothesis
            // ("AST constructor recursion depth mismatch").
            "--workers",
            "1",
            // Replaying dead letters is fine to call but not to fuzz in a loop.
            "--exclude-path",
            "/admin/dlq/replay",
            // Fuzz the admin routes as an operator would call them.
            "--header",
            &format!(
                "Authorization: Bearer {}",
                saga_tests::stack::TEST_ADMIN_TOKEN
            ),
            "--report",
            "har",
            "--report-har-path",
        ])
        .arg(&har)
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems in {}:\n{report}\n{}",
        service.name(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&har).expect("schemathesis wrote its HAR report");
    serde_json::from_str(&text).expect("the HAR report is JSON")
}

/// The stock the fuzzer set: the `available` of each `PUT /api/inventory/{id}` it sent
/// that was answered 200, in order, plus what completed orders hold of that product.
fn stock_the_fuzzer_set(har: &Value, orders: &[Value], expected: &mut BTreeMap<String, i64>) {
    for entry in har["log"]["entries"].as_array().expect("HAR entries") {
        let request = &entry["request"];
        let url = request["url"].as_str().unwrap_or_default();
        let Some(product) = url
            .split_once("/api/inventory/")
            .map(|(_, rest)| percent_decode(rest.split('?').next().unwrap_or_default()))
        else {
            continue;
        };
        if request["method"] != "PUT" || entry["response"]["status"] != 200 {
            continue;
        }
        let body: Value =
            serde_json::from_str(request["postData"]["text"].as_str().unwrap_or_default())
                .expect("an accepted PUT had a JSON body");
        let available = body["available"]
            .as_i64()
            .expect("an accepted PUT's available");
        let reserved: i64 = orders
            .iter()
            .filter(|o| o["status"] == "COMPLETED")
            .flat_map(|o| o["items"].as_array().cloned().unwrap_or_default())
            .filter(|item| item["product_id"] == product.as_str())
            .map(|item| item["quantity"].as_i64().unwrap_or_default())
            .sum();
        expected.insert(product, available + reserved);
    }
}

/// `%41` → `A`, as the path segment was encoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn schemathesis_finds_no_server_errors_or_schema_violations() {
    let stack = TestStack::start().await;
    let stack = tokio::task::spawn_blocking(move || {
        fuzz(&stack, Service::Order, 60);
        stack
    })
    .await
    .unwrap();
    // Whatever orders the fuzzer placed, the saga still holds together.
    stack.assert_invariants().await;

    let orders = stack.all_orders().await;
    let (mut stack, har) = tokio::task::spawn_blocking(move || {
        let har = fuzz(&stack, Service::Inventory, 30);
        for service in [Service::Payment, Service::Notification] {
            fuzz(&stack, service, 30);
        }
        (stack, har)
    })
    .await
    .unwrap();
    let mut expected = stack.expected_stock.clone();
    stock_the_fuzzer_set(&har, &orders, &mut expected);
    stack.expected_stock = expected;
    stack.assert_invariants().await;
    stack.cleanup().await;
}
