//! Schemathesis generates thousands of requests from each service's live OpenAPI document
//! and checks that none gets a 5xx or a response that breaks the document.

use saga_tests::{Service, TestStack};
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

/// Runs a bounded, seeded schemathesis session against one service.
fn fuzz(stack: &TestStack, service: Service, examples: u32) {
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
        ])
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

    let stack = tokio::task::spawn_blocking(move || {
        for service in [Service::Inventory, Service::Payment, Service::Notification] {
            fuzz(&stack, service, 30);
        }
        stack
    })
    .await
    .unwrap();
    stack.cleanup().await;
}
