//! `loadgen provider`, the stand-in card processor of the HTTP path's benchmarks (issue 35,
//! docs/benchmark-provider.md), is a provider payment-service can work with: sagas through
//! it complete, its latency is felt, and its declines are answers payment-service retries
//! under new keys — CONTRACT §7 end to end, against the real binary.

use saga_tests::{Service, TestStack, eventually, stack};
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// `loadgen provider` with these arguments on a free port: the process (killed when
/// dropped) and its base URL, from the line it prints at start.
async fn start_provider(args: &[&str]) -> (Child, String) {
    stack::ensure_built();
    let mut child = Command::new(devstack::binary("loadgen").expect("the binaries' folder"))
        .arg("provider")
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("loadgen starts");
    let stdout = child.stdout.take().expect("its stdout");
    let mut first = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(stdout).read_line(&mut first),
    )
    .await
    .expect("the provider says where it listens")
    .expect("its stdout can be read");
    let url = first
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();
    (child, url)
}

async fn stats(url: &str) -> Value {
    reqwest::get(format!("{url}/stats"))
        .await
        .expect("the provider answers")
        .json()
        .await
        .expect("its stats are JSON")
}

#[tokio::test]
async fn sagas_through_the_benchmark_provider_complete_and_wait_for_its_latency() {
    let (_provider, url) = start_provider(&["--latency-ms", "150"]).await;
    let stack = TestStack::builder()
        .service_env(Service::Payment, "PAYMENT_PROVIDER_URL", &url)
        .start()
        .await;
    let mut ids = Vec::new();
    for n in 0..4 {
        let order = stack
            .place_order("c", &[("product-A", 1)], 10.0 + f64::from(n))
            .await;
        ids.push(order["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let ended = stack.final_order(id).await;
        assert_eq!(ended["status"], "COMPLETED");
        // The saga waited for the provider's answer. (UTC, without an offset: CONTRACT §2.)
        let at = |field: &str| {
            let text = ended[field].as_str().unwrap();
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").unwrap()
        };
        let took = (at("updated_at") - at("created_at")).to_std().unwrap();
        assert!(took >= Duration::from_millis(150), "{took:?}: {ended}");
        let payment = stack.payment(id).await.expect("a payment");
        assert!(
            payment["charge_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("ch_bench_")),
            "{payment}"
        );
    }
    let counts = stats(&url).await;
    assert_eq!(counts["charges"], 4, "{counts}");
    assert_eq!(counts["refused"], 0, "{counts}");
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_provider_that_declines_every_charge_fails_each_payment_after_its_attempts() {
    let (_provider, url) = start_provider(&["--decline-rate", "1"]).await;
    let stack = TestStack::builder()
        .service_env(Service::Payment, "PAYMENT_PROVIDER_URL", &url)
        .service_env(Service::Payment, "PAYMENT_RETRY_BASE_MS", "50")
        .start()
        .await;
    let order = stack.place_order("c", &[("product-A", 2)], 9.0).await;
    let id = order["id"].as_str().unwrap();
    let ended = stack.final_order(id).await;
    assert_eq!(ended["status"], "CANCELLED", "{ended}");
    let payment = stack.payment(id).await.expect("a payment");
    assert_eq!(payment["status"], "FAILED", "{payment}");
    assert_eq!(payment["attempts"], 3, "{payment}");
    // Three attempts, three keys, three declines; nothing charged.
    eventually("the provider's count", Duration::from_secs(10), || async {
        let counts = stats(&url).await;
        if counts["declines"] == 3 && counts["charges"] == 0 {
            Ok(())
        } else {
            Err(counts.to_string())
        }
    })
    .await;
    stack.assert_invariants().await;
    stack.cleanup().await;
}
