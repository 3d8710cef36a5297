//! The Kubernetes manifests held to the code. No cluster runs here, so each overlay is
//! rendered with `kubectl kustomize` and checked against what the binaries, the Dockerfile
//! and a running stack say:
//!
//! - each service container's environment, worked out as the kubelet would (ConfigMaps,
//!   Secrets — the overlay's own or those its operators make — `$(NAME)` expansion,
//!   mounted CA files), passes the binary's own `--check-config`; every variable set is one
//!   the service reads (or only spelled into another); the variables a deployment must set
//!   are set; the production overlay runs quorum queues and TLS to the broker and databases;
//! - every Secret, ConfigMap, key, volume and `$(NAME)` reference resolves;
//! - every probe and Service port names the container's port, which is the port of the
//!   service's `HTTP_ADDR`; every probe path answers on a running service (not 404/405);
//! - every Deployment runs, as the Dockerfile's user, one of the binaries the Dockerfile's
//!   image holds — the one it is named after — from that image;
//! - two replicas, a PodDisruptionBudget each, order-service's HPA, a grace period above
//!   the shutdown bound plus the preStop pause, non-root and a read-only root filesystem,
//!   resources requested;
//! - the NetworkPolicies deny by default, let in from outside only order-service's port,
//!   and each database only from its service;
//! - nothing secret is committed (docs/security.md): the admin token, the issuer and the
//!   trial's passwords come from files each operator writes, which git ignores and without
//!   which nothing renders; every service runs with the operator's token and with
//!   authentication on.
//!
//! Each test renders a copy of `deploy/k8s` prepared as docs/security.md says.

use saga_tests::k8s::{
    ContainerEnv, Deployment, Dockerfile, OPERATOR_FILES, OPERATOR_ISSUER, Rendered, check_config,
    kustomize, repository,
};
use saga_tests::{Service, TestStack};
use serde_json::Value;
use std::collections::BTreeSet;

/// How long a service takes at most to stop after SIGTERM (README "Graceful stop").
const SHUTDOWN_BOUND_SECS: u64 = 11;

/// Variables every deployment must set: their defaults point at 127.0.0.1, turn the admin
/// routes off or leave the API open.
const REQUIRED: [&str; 4] = ["DATABASE_URL", "AMQP_URL", "ADMIN_TOKEN", "AUTH_ISSUER"];

fn rendered() -> Vec<Rendered> {
    Deployment::prepared().render()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn pod(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]
}

fn container(deployment: &Value) -> &Value {
    &pod(deployment)["containers"][0]
}

fn service_of(deployment: &Value) -> Service {
    *Service::ALL
        .iter()
        .find(|service| service.name() == name(deployment))
        .unwrap_or_else(|| panic!("{} is not a service of the saga", name(deployment)))
}

#[test]
fn every_overlay_renders_the_four_services() {
    let overlays = rendered();
    let names: Vec<&str> = overlays.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["production", "trial"]);
    for overlay in &overlays {
        let deployments: BTreeSet<&str> = overlay.deployments().into_iter().map(name).collect();
        let services: BTreeSet<&str> = Service::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(deployments, services, "{}", overlay.name);
    }
}

#[test]
fn every_service_environment_passes_its_own_config_check_and_sets_only_what_it_reads() {
    let tree = Deployment::prepared();
    let mut failures = Vec::new();
    for overlay in tree.render() {
        for deployment in overlay.deployments() {
            let service = service_of(deployment);
            let env = ContainerEnv::of(&overlay, deployment, container(deployment));
            let at = format!("{}/{}", overlay.name, service.name());
            failures.extend(env.problems.iter().map(|p| format!("{at}: {p}")));

            let check = check_config(service.name(), &env.vars);
            if !check.ok {
                failures.push(format!("{at}: --check-config refused it: {}", check.output));
                continue;
            }
            for (var, _) in &env.vars {
                if !check.reads.contains(var) && !env.referenced.contains(var) {
                    failures.push(format!("{at}: sets {var}, which the service does not read"));
                }
            }
            let mut required = REQUIRED.to_vec();
            if service == Service::Order {
                // The dashboard's stock: its default is 127.0.0.1.
                required.push("INVENTORY_URL");
            }
            for var in required {
                if env.get(var).is_none_or(str::is_empty) {
                    failures.push(format!("{at}: {var} is not set"));
                }
            }
            // The operator's own values, not anything the repository holds.
            if env.get("ADMIN_TOKEN") != tree.admin_token.as_deref() {
                failures.push(format!(
                    "{at}: ADMIN_TOKEN is not the operator's admin-token.env"
                ));
            }
            if env.get("AUTH_ISSUER") != Some(OPERATOR_ISSUER) {
                failures.push(format!("{at}: AUTH_ISSUER is not the operator's auth.env"));
            }
            if env.get("AUTH_DISABLED").is_some() {
                failures.push(format!("{at}: the manifests set AUTH_DISABLED"));
            }
            for (var, value) in &env.vars {
                if value.contains("127.0.0.1") || value.contains("localhost") {
                    failures.push(format!("{at}: {var} points at this pod itself: {value}"));
                }
            }
            if overlay.name == "production" {
                let amqp = env.get("AMQP_URL").unwrap_or_default();
                let database = env.get("DATABASE_URL").unwrap_or_default();
                if env.get("AMQP_QUEUE_TYPE") != Some("quorum") {
                    failures.push(format!("{at}: AMQP_QUEUE_TYPE is not quorum"));
                }
                if !amqp.starts_with("amqps://") || !amqp.contains("cacertfile=") {
                    failures.push(format!("{at}: AMQP_URL is not TLS verified against a CA"));
                }
                if !database.contains("sslmode=verify-full") || !database.contains("sslrootcert=") {
                    failures.push(format!("{at}: DATABASE_URL does not verify the server"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_secret_and_config_map_a_pod_names_exists_with_its_keys() {
    let mut failures = Vec::new();
    for overlay in rendered() {
        let workloads = overlay
            .all("Deployment")
            .chain(overlay.all("StatefulSet"))
            .map(|workload| (name(workload).to_owned(), workload, pod(workload)));
        for (workload_name, workload, pod) in workloads {
            for container in pod["containers"].as_array().into_iter().flatten() {
                let env = ContainerEnv::of(&overlay, workload, container);
                failures.extend(
                    env.problems
                        .iter()
                        .map(|p| format!("{}/{workload_name}: {p}", overlay.name)),
                );
            }
            for volume in pod["volumes"].as_array().into_iter().flatten() {
                for (kind, name) in [
                    ("Secret", volume["secret"]["secretName"].as_str()),
                    ("ConfigMap", volume["configMap"]["name"].as_str()),
                ] {
                    if let Some(name) = name
                        && overlay.source(kind, name).is_none()
                    {
                        failures.push(format!(
                            "{}/{workload_name}: no {kind} {name}",
                            overlay.name
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn probes_and_ports_name_the_port_and_routes_each_service_serves() {
    let overlays = rendered();
    let stack = TestStack::start().await;
    // Every probe of a ready stack passes: 200, as the kubelet wants a 2xx.
    stack.all_ready().await;
    let mut failures = Vec::new();
    for overlay in &overlays {
        for deployment in overlay.deployments() {
            let service = service_of(deployment);
            let at = format!("{}/{}", overlay.name, service.name());
            let container = container(deployment);
            let ports = container["ports"].as_array().cloned().unwrap_or_default();
            let resolve = |port: &Value| -> Option<u64> {
                match port {
                    Value::String(named) => ports
                        .iter()
                        .find(|p| p["name"] == *named)
                        .and_then(|p| p["containerPort"].as_u64()),
                    Value::Number(number) => number
                        .as_u64()
                        .filter(|n| ports.iter().any(|p| p["containerPort"] == *n)),
                    _ => None,
                }
            };
            // The port the service listens on: the manifests spell HTTP_ADDR.
            let env = ContainerEnv::of(overlay, deployment, container);
            let Some(listens) = env
                .get("HTTP_ADDR")
                .and_then(|addr| addr.rsplit_once(':'))
                .and_then(|(_, port)| port.parse::<u64>().ok())
            else {
                failures.push(format!("{at}: HTTP_ADDR names no port"));
                continue;
            };
            for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                let get = &container[probe]["httpGet"];
                let Some(path) = get["path"].as_str() else {
                    failures.push(format!("{at}: no HTTP {probe}"));
                    continue;
                };
                if resolve(&get["port"]) != Some(listens) {
                    failures.push(format!(
                        "{at}: {probe} port {} is not the port the service listens on ({listens})",
                        get["port"]
                    ));
                }
                let answer = stack
                    .http
                    .get(stack.url(service, path))
                    .send()
                    .await
                    .expect("the service answers");
                if answer.status() != reqwest::StatusCode::OK {
                    failures.push(format!(
                        "{at}: {probe} {path} answers {} on a ready stack, not 200",
                        answer.status()
                    ));
                }
            }
            let wanted = [("livenessProbe", "/health"), ("readinessProbe", "/ready")];
            for (probe, path) in wanted {
                if container[probe]["httpGet"]["path"] != path {
                    failures.push(format!("{at}: {probe} is not {path}"));
                }
            }
            match overlay.named("Service", service.name()) {
                Some(object) => {
                    let selects = &object["spec"]["selector"];
                    if !selects_pod(selects, deployment) {
                        failures.push(format!("{at}: its Service selects other pods"));
                    }
                    for port in object["spec"]["ports"].as_array().into_iter().flatten() {
                        if resolve(&port["targetPort"]) != Some(listens) {
                            failures
                                .push(format!("{at}: Service targetPort {}", port["targetPort"]));
                        }
                    }
                }
                None => failures.push(format!("{at}: no Service")),
            }
        }
    }
    stack.cleanup().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn each_deployment_runs_its_binary_from_the_dockerfiles_image_as_its_user() {
    let dockerfile = Dockerfile::read();
    let mut services: Vec<&str> = Service::ALL.iter().map(|s| s.name()).collect();
    services.sort();
    assert_eq!(dockerfile.binaries, services, "the Dockerfile's binaries");
    let mut failures = Vec::new();
    for overlay in rendered() {
        for deployment in overlay.deployments() {
            let at = format!("{}/{}", overlay.name, name(deployment));
            let container = container(deployment);
            let image = container["image"].as_str().unwrap_or_default();
            let repository = image.rsplit('/').next().unwrap_or_default();
            let repository = repository.split([':', '@']).next().unwrap_or_default();
            if repository != "order-saga" {
                failures.push(format!(
                    "{at}: image {image} is not the Dockerfile's (order-saga)"
                ));
            }
            let command = container["command"][0].as_str().unwrap_or_default();
            if !dockerfile.binaries.iter().any(|b| b == command) || command != name(deployment) {
                failures.push(format!(
                    "{at}: runs {command:?}, not its binary of the image"
                ));
            }
            let security = &pod(deployment)["securityContext"];
            if security["runAsUser"].as_u64() != Some(dockerfile.uid)
                || security["runAsNonRoot"] != true
            {
                failures.push(format!(
                    "{at}: does not run as the image's user {}",
                    dockerfile.uid
                ));
            }
            let own = &container["securityContext"];
            if own["readOnlyRootFilesystem"] != true || own["allowPrivilegeEscalation"] != false {
                failures.push(format!(
                    "{at}: root filesystem writable or privilege escalation"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn replicas_budgets_autoscaling_grace_and_resources_are_set() {
    let mut failures = Vec::new();
    for overlay in rendered() {
        for deployment in overlay.deployments() {
            let at = format!("{}/{}", overlay.name, name(deployment));
            if deployment["spec"]["replicas"] != 2 {
                failures.push(format!("{at}: not two replicas"));
            }
            let container = container(deployment);
            let pause = container["lifecycle"]["preStop"]["exec"]["command"]
                .as_array()
                .filter(|c| c.first().is_some_and(|c| c == "sleep"))
                .and_then(|c| c.get(1)?.as_str()?.parse::<u64>().ok())
                .or_else(|| container["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64());
            let Some(pause) = pause else {
                failures.push(format!("{at}: no preStop pause"));
                continue;
            };
            let grace = pod(deployment)["terminationGracePeriodSeconds"]
                .as_u64()
                .unwrap_or(30);
            if grace <= pause + SHUTDOWN_BOUND_SECS {
                failures.push(format!(
                    "{at}: grace {grace} s is not above the {pause} s pause + {SHUTDOWN_BOUND_SECS} s shutdown"
                ));
            }
            let resources = &container["resources"];
            for field in ["requests/cpu", "requests/memory", "limits/memory"] {
                let (group, what) = field.split_once('/').unwrap();
                if resources[group][what].is_null() {
                    failures.push(format!("{at}: no {field}"));
                }
            }
            let budgets: Vec<&Value> = overlay
                .all("PodDisruptionBudget")
                .filter(|pdb| selects_pod(&pdb["spec"]["selector"]["matchLabels"], deployment))
                .collect();
            if budgets.len() != 1 {
                failures.push(format!("{at}: {} PodDisruptionBudgets", budgets.len()));
            }
        }
        let scalers: Vec<&str> = overlay
            .all("HorizontalPodAutoscaler")
            .map(|hpa| {
                hpa["spec"]["scaleTargetRef"]["name"]
                    .as_str()
                    .unwrap_or_default()
            })
            .collect();
        if scalers != ["order-service"] {
            failures.push(format!("{}: HPAs scale {scalers:?}", overlay.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn only_order_service_is_open_and_each_database_only_to_its_service() {
    let mut failures = Vec::new();
    for overlay in rendered() {
        let policies: Vec<&Value> = overlay.all("NetworkPolicy").collect();
        let denies_all = policies.iter().any(|p| {
            p["spec"]["podSelector"]
                .as_object()
                .is_some_and(|s| s.is_empty())
                && p["spec"]["ingress"].is_null()
                && p["spec"]["policyTypes"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "Ingress"))
        });
        if !denies_all {
            failures.push(format!("{}: no default deny of ingress", overlay.name));
        }
        for policy in &policies {
            let selector = &policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"];
            for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
                if rule["from"].is_null() && selector != "order-service" {
                    failures.push(format!(
                        "{}: {} lets anyone reach {selector}",
                        overlay.name,
                        name(policy)
                    ));
                }
            }
        }
        // Each database's pods: who may reach PostgreSQL's port.
        for service in Service::ALL {
            let database = format!("{}-db", service.short_name());
            let selects_database = |p: &&&Value| {
                let labels = &p["spec"]["podSelector"]["matchLabels"];
                labels["app.kubernetes.io/name"] == database.as_str()
                    || labels["cnpg.io/cluster"] == database.as_str()
            };
            let guarding: Vec<&&Value> = policies.iter().filter(selects_database).collect();
            if guarding.is_empty() {
                failures.push(format!("{}: no policy for {database}", overlay.name));
            }
            let names = postgres_port_names(&overlay, &database);
            for policy in guarding {
                for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
                    let opens_postgres = rule["ports"]
                        .as_array()
                        .is_none_or(|ports| ports.iter().any(|p| names.opens_postgres(p)));
                    if !opens_postgres {
                        continue;
                    }
                    for peer in rule["from"].as_array().into_iter().flatten() {
                        let labels = &peer["podSelector"]["matchLabels"];
                        let its_service = labels["app.kubernetes.io/name"] == service.name();
                        let its_own_instances = labels["cnpg.io/cluster"] == database.as_str();
                        if !(its_service || its_own_instances)
                            || !peer["namespaceSelector"].is_null()
                        {
                            failures.push(format!(
                                "{}: {} lets {peer} reach {database}'s PostgreSQL",
                                overlay.name,
                                name(policy)
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The port names a database's pods give: its own workload's (the trial's StatefulSet), or
/// those CloudNativePG gives an instance of a `Cluster` (`postgresql` 5432, `metrics` 9187,
/// `status` 8000).
struct PortNames(Vec<(String, u64)>);

fn postgres_port_names(overlay: &Rendered, database: &str) -> PortNames {
    let mut names: Vec<(String, u64)> = ["StatefulSet", "Deployment"]
        .into_iter()
        .filter_map(|kind| overlay.named(kind, database))
        .flat_map(|workload| pod(workload)["containers"].as_array().cloned())
        .flatten()
        .flat_map(|container| container["ports"].as_array().cloned())
        .flatten()
        .filter_map(|port| {
            Some((
                port["name"].as_str()?.to_owned(),
                port["containerPort"].as_u64()?,
            ))
        })
        .collect();
    if overlay.named("Cluster", database).is_some() {
        names.extend(
            [("postgresql", 5432), ("metrics", 9187), ("status", 8000)]
                .map(|(n, p)| (n.to_owned(), p)),
        );
    }
    PortNames(names)
}

impl PortNames {
    /// Whether a NetworkPolicy port entry lets PostgreSQL's 5432 through: by number (or a
    /// range to `endPort`), by a name the pods give 5432, or by a name they do not give at
    /// all (unknown, so taken as open), or with no port (every port).
    fn opens_postgres(&self, entry: &Value) -> bool {
        match &entry["port"] {
            Value::Number(port) => {
                let from = port.as_u64().unwrap_or_default();
                let to = entry["endPort"].as_u64().unwrap_or(from);
                (from..=to).contains(&5432)
            }
            Value::String(named) => self
                .0
                .iter()
                .find(|(name, _)| name == named)
                .is_none_or(|(_, port)| *port == 5432),
            _ => true,
        }
    }
}

/// Whether `labels` (a selector's matchLabels) selects the Deployment's pods.
fn selects_pod(labels: &Value, deployment: &Value) -> bool {
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    labels
        .as_object()
        .is_some_and(|l| !l.is_empty() && l.iter().all(|(k, v)| pod_labels[k] == *v))
}

#[test]
fn no_secret_is_committed_and_nothing_renders_before_the_operator_wrote_theirs() {
    let committed = git(&["ls-files", "deploy"]);
    let mut failures = Vec::new();
    for file in OPERATOR_FILES {
        let path = format!("deploy/k8s/{file}");
        if committed.lines().any(|line| line == path) {
            failures.push(format!("{path} is committed"));
        }
        let ignored = std::process::Command::new("git")
            .args(["check-ignore", "-q", "--no-index", &path])
            .current_dir(repository())
            .status()
            .expect("git runs");
        if !ignored.success() {
            failures.push(format!("{path} is not in .gitignore"));
        }
    }
    // No placeholder a service would run with (or an operator would forget to replace).
    for path in committed.lines() {
        let text = std::fs::read_to_string(repository().join(path)).unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            let folded = line.to_ascii_lowercase().replace(['-', '_'], "");
            let placeholder = ["replaceme", "changeme"]
                .iter()
                .any(|shape| folded.contains(shape));
            let token_value = line
                .trim()
                .strip_prefix("ADMIN_TOKEN=")
                .is_some_and(|value| !value.is_empty());
            if placeholder || token_value {
                failures.push(format!("{path}:{}: {line}", number + 1));
            }
        }
    }
    // A fresh clone renders nothing: the Secret and the issuer are the operator's to write.
    let tree = Deployment::as_committed();
    for (name, dir) in tree.overlays() {
        match kustomize(&dir) {
            Ok(_) => failures.push(format!("{name} renders without the operator's files")),
            Err(error)
                if !OPERATOR_FILES.iter().any(|file| {
                    let file_name = file.rsplit('/').next().unwrap_or(file);
                    error.contains(file_name)
                }) =>
            {
                failures.push(format!(
                    "{name} fails to render for another reason: {error}"
                ))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn git(args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(repository())
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).expect("UTF-8")
}
