//! TLS servers of the test's own, on their own ports and folders beside the shared ones:
//! [`pki`] makes the CA and certificates, [`rabbit`] a TLS-only RabbitMQ node, [`postgres`]
//! a TLS-only PostgreSQL instance. [`start_alone`] runs one service binary that is expected
//! to stop at start, and says how it stopped; [`complete_orders`] runs sagas through a stack
//! on those servers.

pub mod pki;
pub mod postgres;
pub mod rabbit;

use crate::TestStack;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a service that was expected to refuse to start ended: its exit status and
/// everything it printed.
pub struct Refusal {
    pub status: ExitStatus,
    pub output: String,
}

impl Refusal {
    /// The `error` field of its JSON `failed to start` line, or the whole output when there
    /// is none (a configuration error is printed before logging starts).
    pub fn message(&self) -> String {
        self.output
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|entry| entry["message"] == "failed to start")
            .and_then(|entry| entry["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| self.output.trim().to_owned())
    }
}

/// Runs `binary` with only these variables (plus `PATH`, JSON logs and a free HTTP port)
/// and waits up to `deadline` for it to exit; a service still running by then has hung,
/// and the test fails with its output.
pub async fn start_alone(binary: &str, vars: &[(&str, String)], deadline: Duration) -> Refusal {
    crate::stack::ensure_built();
    let log = std::env::temp_dir().join(format!("{binary}-{}.log", uuid::Uuid::new_v4().simple()));
    let file = std::fs::File::create(&log).expect("a log file");
    let mut command = Command::new(devstack::binary(binary).expect("a service binary"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .env("HTTP_ADDR", format!("127.0.0.1:{}", rabbit::free_port()))
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("the log file can be shared"))
        .stderr(file);
    for (name, value) in vars {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the service starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{binary} still runs after {deadline:?} instead of refusing to start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    Refusal { status, output }
}

/// Places `count` orders that must complete and waits until each has; returns their ids.
pub async fn complete_orders(stack: &TestStack, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let order = stack
            .place_order("customer-tls", &[("product-A", 1)], 25.0)
            .await;
        ids.push(order["id"].as_str().expect("an order id").to_owned());
    }
    for id in &ids {
        assert_eq!(stack.final_order(id).await["status"], "COMPLETED", "{id}");
    }
    ids
}
