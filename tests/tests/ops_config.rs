//! The monitoring that docker-compose ships (Prometheus, Grafana and its dashboard) can't be
//! started here (no container engine), so these tests parse its files and check that every
//! series the dashboard plots from our services is one a running system really exports.

use saga_tests::{Service, TestStack};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn yaml(path: &str) -> serde_norway::Value {
    let text = std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut value: serde_norway::Value =
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"));
    // Resolve `<<: *anchor` merge keys, as docker compose does.
    value.apply_merge().expect("merge keys resolve");
    value
}

fn dashboard() -> Value {
    let path = "ops/grafana/dashboards/order-saga.json";
    let text = std::fs::read_to_string(repo_file(path)).expect("the dashboard exists");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every PromQL expression of the dashboard.
fn dashboard_queries() -> Vec<String> {
    dashboard()["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().expect("targets").clone())
        .map(|target| target["expr"].as_str().expect("an expr").to_owned())
        .collect()
}

/// The metric names a query selects (identifiers followed by a `{` label matcher).
fn metric_names(query: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let chars: Vec<char> = query.chars().collect();
    let mut start = None;
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() || *c == '_' {
            start.get_or_insert(i);
        } else {
            if *c == '{'
                && let Some(s) = start
            {
                names.insert(chars[s..i].iter().collect());
            }
            start = None;
        }
    }
    names
}

#[test]
fn compose_runs_jaeger_prometheus_and_grafana_on_the_files_in_the_repo() {
    let compose = yaml("docker-compose.yml");
    for service in ["prometheus", "grafana", "jaeger"] {
        let definition = &compose["services"][service];
        assert!(definition.is_mapping(), "compose has no {service}");
        let volumes = definition["volumes"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        for volume in &volumes {
            let volume = volume.as_str().expect("a short volume");
            let source = volume.split(':').next().unwrap();
            assert!(
                repo_file(source).exists(),
                "{service} mounts {source}, which is not in the repo"
            );
        }
        for port in definition["ports"].as_sequence().expect("ports") {
            assert!(
                port.as_str().expect("a port").starts_with("127.0.0.1:"),
                "{service} publishes {port:?} beyond this machine"
            );
        }
    }
}

#[test]
fn compose_sends_every_services_spans_to_jaeger() {
    let compose = yaml("docker-compose.yml");
    let services = compose["services"].as_mapping().expect("services");
    let ours: Vec<&str> = services
        .keys()
        .filter_map(|name| name.as_str())
        .filter(|name| name.ends_with("-service"))
        .collect();
    assert_eq!(ours.len(), 4, "{ours:?}");
    for name in ours {
        assert_eq!(
            compose["services"][name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"].as_str(),
            Some("http://jaeger:4318"),
            "{name}"
        );
    }
}

#[test]
fn prometheus_scrapes_all_four_services_and_the_broker_queues() {
    let config = yaml("ops/prometheus/prometheus.yml");
    let jobs: BTreeSet<&str> = config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .map(|job| job["job_name"].as_str().expect("job_name"))
        .collect();
    assert_eq!(
        jobs,
        BTreeSet::from([
            "order-service",
            "inventory-service",
            "payment-service",
            "notification-service",
            "rabbitmq",
        ])
    );
    let datasource = yaml("ops/grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(
        datasource["datasources"][0]["url"].as_str(),
        Some("http://prometheus:9090")
    );
}

#[test]
fn the_dashboard_has_the_panels_an_operator_needs() {
    let titles: Vec<String> = dashboard()["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .map(|panel| panel["title"].as_str().expect("a title").to_lowercase())
        .collect();
    for wanted in [
        "throughput",
        "saga latency",
        "outbox backlog",
        "dead-letter",
        "lag",
        "circuit breaker",
    ] {
        assert!(
            titles.iter().any(|title| title.contains(wanted)),
            "no panel about {wanted}: {titles:?}"
        );
    }
}

#[tokio::test]
async fn every_series_the_dashboard_plots_is_exported_by_a_running_system() {
    let stack = TestStack::start().await;
    let order = stack
        .place_order("customer-ops", &[("product-A", 1)], 10.0)
        .await;
    let done = stack.final_order(order["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "COMPLETED");

    let mut exported = String::new();
    for service in Service::ALL {
        for instance in stack.instances(service) {
            let text = stack
                .http
                .get(format!("http://{}/metrics", instance.addr))
                .send()
                .await
                .expect("metrics answer")
                .text()
                .await
                .expect("metrics text");
            exported.push_str(&text);
        }
    }
    let ours: BTreeSet<String> = dashboard_queries()
        .iter()
        .flat_map(|query| metric_names(query))
        // RabbitMQ's own series come from its Prometheus plugin, not from us.
        .filter(|name| !name.starts_with("rabbitmq_"))
        .collect();
    assert!(ours.contains("saga_duration_seconds_bucket"), "{ours:?}");
    for name in &ours {
        assert!(
            exported
                .lines()
                .any(|line| line.starts_with(&format!("{name}{{"))
                    || line.starts_with(&format!("{name} "))),
            "the dashboard plots {name}, which no service exports"
        );
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[test]
fn compose_starts_without_a_shared_admin_token_and_every_service_takes_its_default() {
    saga_tests::stack::ensure_built();
    for file in ["docker-compose.yml", "docker-compose.cluster.yml"] {
        let compose = yaml(file);
        let services = compose["services"].as_mapping().expect("services");
        for (name, definition) in services {
            let Some(value) = definition["environment"]["ADMIN_TOKEN"].as_str() else {
                continue;
            };
            // `${ADMIN_TOKEN:-default}`, as compose expands it with ADMIN_TOKEN unset.
            let default = value
                .strip_prefix("${ADMIN_TOKEN:-")
                .and_then(|rest| rest.strip_suffix('}'))
                .unwrap_or(value);
            assert!(
                default.is_empty(),
                "{file} {name:?}: ADMIN_TOKEN defaults to {default:?}, a token anyone can read"
            );
            let binary = name.as_str().expect("a service name");
            if Service::ALL.iter().any(|s| s.name() == binary) {
                let output = std::process::Command::new(devstack::binary(binary).unwrap())
                    .arg("--check-config")
                    .env_clear()
                    .env("ADMIN_TOKEN", default)
                    .output()
                    .expect("the binary runs");
                assert!(output.status.success(), "{file} {binary}: {output:?}");
            }
        }
    }
}
