//! docker-compose.cluster.yml cannot be started here (no container engine), so it is
//! checked by reading it: three RabbitMQ nodes that cluster by classic config peer
//! discovery with one cookie, and two replicas of each service that list all three nodes,
//! use quorum queues, and whose environment the services' own configuration accepts.

use common::amqp::nodes::Nodes;
use common::config::{CommonConfig, Vars};
use contract::Service;
use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::Path;

const NODES: [&str; 3] = ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"];

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
}

/// The file with its `<<` merge keys applied, as docker compose reads it.
fn compose() -> Value {
    let text = std::fs::read_to_string(repository().join("docker-compose.cluster.yml"))
        .expect("docker-compose.cluster.yml exists");
    let mut value: Value = serde_norway::from_str(&text).expect("the file is YAML");
    value.apply_merge().expect("merge keys apply");
    value
}

/// `${NAME:-default}` as compose fills it in when `NAME` is unset.
fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed ${…}") + start;
        let inner = &rest[start + 2..end];
        let (_, default) = inner
            .split_once(":-")
            .unwrap_or_else(|| panic!("${{{inner}}} has no default, so the file needs it set"));
        out.push_str(default);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_mapping()
        .expect("an environment mapping")
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => serde_norway::to_string(other).unwrap().trim().to_owned(),
            };
            (k.as_str().unwrap().to_owned(), interpolate(&value))
        })
        .collect()
}

fn published_ports(service: &Value) -> Vec<String> {
    service["ports"]
        .as_sequence()
        .map(|ports| {
            ports
                .iter()
                .map(|p| p.as_str().expect("ports as strings").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn three_rabbitmq_nodes_cluster_by_classic_config_with_one_cookie() {
    let compose = compose();
    let conf = std::fs::read_to_string(repository().join("deploy/rabbitmq-cluster.conf"))
        .expect("the cluster's rabbitmq.conf exists");
    assert!(conf.contains("cluster_formation.peer_discovery_backend = classic_config"));
    let mut cookies = Vec::new();
    for (n, node) in NODES.iter().enumerate() {
        assert!(
            conf.contains(&format!(
                "cluster_formation.classic_config.nodes.{} = rabbit@{node}",
                n + 1
            )),
            "{node} is not in the peer list"
        );
        let service = &compose["services"][*node];
        assert_eq!(
            service["hostname"].as_str(),
            Some(*node),
            "node names follow hostnames"
        );
        let mounts: Vec<&str> = service["volumes"]
            .as_sequence()
            .expect("volumes")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            mounts.contains(
                &"./deploy/rabbitmq-cluster.conf:/etc/rabbitmq/conf.d/20-cluster.conf:ro"
            ),
            "{node} does not read the cluster config: {mounts:?}"
        );
        let env = environment(service);
        cookies.push(env["RABBITMQ_ERLANG_COOKIE"].clone());
        assert_ne!(env["RABBITMQ_DEFAULT_USER"], "guest");
        for port in published_ports(service) {
            assert!(port.starts_with("127.0.0.1:"), "{node} publishes {port}");
        }
    }
    assert!(cookies.windows(2).all(|w| w[0] == w[1]), "{cookies:?}");
}

#[test]
fn two_replicas_of_each_service_list_all_three_nodes_with_quorum_queues() {
    let compose = compose();
    for service in Service::ALL {
        let definition = &compose["services"][service.name()];
        assert_eq!(
            definition["deploy"]["replicas"].as_u64(),
            Some(2),
            "{} replicas",
            service.name()
        );
        let env = environment(definition);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // Only what compose sets is checked; the service's own defaults play no part.
        let descriptor = saga_tests::descriptor(service);
        let config = CommonConfig::from_vars(descriptor, &Vars::from_pairs(pairs))
            .unwrap_or_else(|error| panic!("{}: {error}", service.name()));
        assert_eq!(config.amqp_queue_type, "quorum".parse().unwrap());
        let nodes: Nodes = config.amqp_url.parse().unwrap();
        let addresses: Vec<&str> = nodes.iter().map(|n| n.address()).collect();
        assert_eq!(
            addresses,
            NODES.map(|n| format!("{n}:5672")),
            "{}",
            service.name()
        );
        for node in NODES {
            assert_eq!(
                definition["depends_on"][node]["condition"].as_str(),
                Some("service_healthy"),
                "{} waits for {node}",
                service.name()
            );
        }
        for port in published_ports(definition) {
            assert!(
                port.starts_with("127.0.0.1:"),
                "{} publishes {port}",
                service.name()
            );
        }
    }
}
