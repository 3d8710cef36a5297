//! The Kubernetes manifests (`deploy/k8s`), as a cluster would get them: every overlay
//! rendered with `kubectl kustomize` (offline), parsed, and each service container's
//! environment worked out the way the kubelet would — values from the rendered ConfigMaps
//! and Secrets, or from the Secrets an operator makes for a resource in the overlay,
//! `$(NAME)` expanded, mounted Secret files written to a folder of the test's.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod tree;

pub use tree::{Deployment, OPERATOR_FILES, OPERATOR_ISSUER, kustomize};

/// The repository's root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_owned()
}

/// `kubectl` (or `$KUBECTL`; `scripts/test` installs one when it is missing).
fn kubectl() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned())
}

/// One rendered overlay.
pub struct Rendered {
    pub name: String,
    pub objects: Vec<Value>,
}

impl Rendered {
    /// Renders `dir` with `kubectl kustomize`; a failure to render fails the test.
    pub fn render(name: &str, dir: &Path) -> Self {
        let text = kustomize(dir)
            .unwrap_or_else(|error| panic!("kubectl kustomize {} failed: {error}", dir.display()));
        let objects = serde_norway::Deserializer::from_str(&text)
            .map(|document| Value::deserialize(document).expect("the render is YAML"))
            .filter(|object| !object.is_null())
            .collect();
        Self {
            name: name.to_owned(),
            objects,
        }
    }

    pub fn all(&self, kind: &str) -> impl Iterator<Item = &Value> {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    pub fn named(&self, kind: &str, name: &str) -> Option<&Value> {
        self.all(kind).find(|o| o["metadata"]["name"] == name)
    }

    /// The keys and values of a Secret or ConfigMap this overlay renders, or of one an
    /// operator makes for a resource it renders ([`operator_secrets`]).
    pub fn source(&self, kind: &str, name: &str) -> Option<BTreeMap<String, String>> {
        if let Some(object) = self.named(kind, name) {
            let mut values = BTreeMap::new();
            for (key, value) in object["data"].as_object().into_iter().flatten() {
                let text = value.as_str().unwrap_or_default().to_owned();
                let text = if kind == "Secret" {
                    use base64::Engine;
                    // kubectl wraps long values in a literal block; Kubernetes, like Go's
                    // decoder, skips the line breaks.
                    let text: String = text.split_whitespace().collect();
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .expect("Secret data is base64");
                    String::from_utf8(bytes).expect("a text secret")
                } else {
                    text
                };
                values.insert(key.clone(), text);
            }
            for (key, value) in object["stringData"].as_object().into_iter().flatten() {
                values.insert(key.clone(), value.as_str().unwrap_or_default().to_owned());
            }
            return Some(values);
        }
        if kind != "Secret" {
            return None;
        }
        operator_secrets(self).remove(name)
    }

    /// The Deployments of the four services, by name.
    pub fn deployments(&self) -> Vec<&Value> {
        self.all("Deployment").collect()
    }
}

/// The Secrets operators make for resources of the overlay, with stand-in values of the
/// right shape: RabbitMQ's Cluster Operator `<cluster>-default-user`, CloudNativePG
/// `<cluster>-app` and `<cluster>-ca`, cert-manager the `secretName` of a Certificate.
/// (That the operators really make them so is what a cluster would show.)
fn operator_secrets(rendered: &Rendered) -> BTreeMap<String, BTreeMap<String, String>> {
    let pem = stand_in_certificate();
    let mut secrets = BTreeMap::new();
    let pairs = |list: &[(&str, &str)]| -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    for cluster in rendered.all("RabbitmqCluster") {
        let name = cluster["metadata"]["name"].as_str().unwrap_or_default();
        secrets.insert(
            format!("{name}-default-user"),
            pairs(&[
                ("username", "default_user_Zm9vYmFy"),
                ("password", "operator-made-Pa55word_x"),
                ("host", name),
                ("port", "5671"),
            ]),
        );
    }
    let cnpg = rendered.all("Cluster").filter(|c| {
        c["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("postgresql.cnpg.io/"))
    });
    for cluster in cnpg {
        let name = cluster["metadata"]["name"].as_str().unwrap_or_default();
        let owner = cluster["spec"]["bootstrap"]["initdb"]["owner"]
            .as_str()
            .unwrap_or("app");
        let host = format!("{name}-rw");
        secrets.insert(
            format!("{name}-app"),
            pairs(&[
                ("username", owner),
                ("password", "operatorMadePassword123"),
                ("host", host.as_str()),
                ("port", "5432"),
            ]),
        );
        secrets.insert(
            format!("{name}-ca"),
            pairs(&[("ca.crt", pem.as_str()), ("ca.key", "stand-in")]),
        );
    }
    for certificate in rendered.all("Certificate") {
        if let Some(name) = certificate["spec"]["secretName"].as_str() {
            secrets.insert(
                name.to_owned(),
                pairs(&[
                    ("ca.crt", pem.as_str()),
                    ("tls.crt", pem.as_str()),
                    ("tls.key", "stand-in"),
                ]),
            );
        }
    }
    secrets
}

/// A real certificate, so that a CA file the services read at start parses.
fn stand_in_certificate() -> String {
    let key = rcgen::KeyPair::generate().expect("a key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("parameters");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).expect("a certificate").pem()
}

/// A service container's environment as the kubelet would set it, its files written out.
pub struct ContainerEnv {
    /// Every variable, in the order the kubelet defines them (envFrom, then env), with
    /// references resolved and `$(NAME)` expanded.
    pub vars: Vec<(String, String)>,
    /// The names `$(NAME)` references in other values spell.
    pub referenced: Vec<String>,
    /// What could not be resolved: dangling references and `$(NAME)`s.
    pub problems: Vec<String>,
    /// Where the mounted Secret and ConfigMap files were written; removed on drop.
    root: PathBuf,
}

impl Drop for ContainerEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl ContainerEnv {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Works out `container`'s environment in `workload` (a Deployment or StatefulSet).
    pub fn of(rendered: &Rendered, workload: &Value, container: &Value) -> Self {
        let pod = &workload["spec"]["template"]["spec"];
        let claims: Vec<&Value> = workload["spec"]["volumeClaimTemplates"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|claim| &claim["metadata"]["name"])
            .collect();
        let root = std::env::temp_dir().join(format!(
            "saga-k8s-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        let mut problems = Vec::new();
        let mut vars: Vec<(String, String)> = Vec::new();

        for source in container["envFrom"].as_array().into_iter().flatten() {
            for (kind, field) in [("ConfigMap", "configMapRef"), ("Secret", "secretRef")] {
                if let Some(name) = source[field]["name"].as_str() {
                    match rendered.source(kind, name) {
                        Some(values) => vars.extend(values),
                        None => problems.push(format!("envFrom: no {kind} {name}")),
                    }
                }
            }
        }
        let mut referenced = Vec::new();
        for entry in container["env"].as_array().into_iter().flatten() {
            let name = entry["name"].as_str().unwrap_or_default().to_owned();
            let value = if let Some(value) = entry["value"].as_str() {
                let (expanded, names, unknown) = expand(value, &vars);
                referenced.extend(names);
                problems.extend(
                    unknown
                        .into_iter()
                        .map(|n| format!("{name}: $({n}) names no variable defined before it")),
                );
                expanded
            } else {
                let from = &entry["valueFrom"];
                let mut found = None;
                for (kind, field) in [("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")]
                {
                    if let (Some(source), Some(key)) =
                        (from[field]["name"].as_str(), from[field]["key"].as_str())
                    {
                        found = Some(
                            rendered
                                .source(kind, source)
                                .and_then(|values| values.get(key).cloned())
                                .ok_or(format!("{name}: no key {key} in {kind} {source}")),
                        );
                    }
                }
                match found {
                    Some(Ok(value)) => value,
                    Some(Err(problem)) => {
                        problems.push(problem);
                        continue;
                    }
                    None => {
                        problems.push(format!("{name}: a valueFrom this test cannot resolve"));
                        continue;
                    }
                }
            };
            vars.push((name, value));
        }

        // Mounted Secrets and ConfigMaps become files under `root`; paths in values follow.
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let path = mount["mountPath"].as_str().unwrap_or_default();
            let name = mount["name"].as_str().unwrap_or_default();
            let Some(volume) = pod["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["name"] == name)
            else {
                if !claims.iter().any(|claim| *claim == name) {
                    problems.push(format!("volumeMount {name}: no such volume"));
                }
                continue;
            };
            let source = if let Some(secret) = volume["secret"]["secretName"].as_str() {
                Some(("Secret", secret, &volume["secret"]))
            } else {
                volume["configMap"]["name"]
                    .as_str()
                    .map(|map| ("ConfigMap", map, &volume["configMap"]))
            };
            let Some((kind, source, spec)) = source else {
                continue;
            };
            let Some(values) = rendered.source(kind, source) else {
                problems.push(format!("volume {name}: no {kind} {source}"));
                continue;
            };
            let dir = root.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(&dir).expect("a folder for mounted files");
            let items: Vec<(String, String)> = match spec["items"].as_array() {
                Some(items) => items
                    .iter()
                    .map(|item| {
                        let key = item["key"].as_str().unwrap_or_default().to_owned();
                        (key, item["path"].as_str().unwrap_or_default().to_owned())
                    })
                    .collect(),
                None => values
                    .keys()
                    .map(|key| (key.clone(), key.clone()))
                    .collect(),
            };
            for (key, file) in items {
                match values.get(&key) {
                    Some(content) => std::fs::write(dir.join(file), content).expect("a file"),
                    None => {
                        problems.push(format!("volume {name}: no key {key} in {kind} {source}"))
                    }
                }
            }
            let moved = dir.to_str().expect("a UTF-8 path").to_owned();
            for (_, value) in vars.iter_mut() {
                *value = value.replace(path, &moved);
            }
        }
        Self {
            vars,
            referenced,
            problems,
            root,
        }
    }
}

/// Expands `$(NAME)` as the kubelet does, with the variables defined so far; returns the
/// value, the names it referenced, and those it could not find (left as written).
fn expand(value: &str, defined: &[(String, String)]) -> (String, Vec<String>, Vec<String>) {
    let mut out = String::new();
    let mut names = Vec::new();
    let mut unknown = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = &after[..end];
        match defined.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => out.push_str(v),
            None => {
                out.push_str(&rest[start..start + 2 + end + 1]);
                unknown.push(name.to_owned());
            }
        }
        names.push(name.to_owned());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    (out, names, unknown)
}

/// What `<binary> --check-config` said of an environment.
pub struct ConfigCheck {
    pub ok: bool,
    pub output: String,
    /// The variables the service reads (its `reads:` line).
    pub reads: Vec<String>,
}

/// Runs the service binary's own configuration check with exactly these variables.
pub fn check_config(binary: &str, vars: &[(String, String)]) -> ConfigCheck {
    crate::stack::ensure_built();
    let output = Command::new(devstack::binary(binary).expect("a service binary"))
        .arg("--check-config")
        .env_clear()
        .envs(vars.iter().map(|(n, v)| (n, v)))
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let reads = text
        .lines()
        .find_map(|line| line.strip_prefix("reads: "))
        .map(|names| names.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    ConfigCheck {
        ok: output.status.success(),
        output: text,
        reads,
    }
}

/// The Dockerfile's runtime image: the binaries it copies in and the user it runs as.
pub struct Dockerfile {
    pub binaries: Vec<String>,
    pub uid: u64,
}

impl Dockerfile {
    pub fn read() -> Self {
        let text = std::fs::read_to_string(repository().join("Dockerfile")).expect("Dockerfile");
        let binaries = text
            .split_whitespace()
            .filter_map(|word| word.strip_prefix("target/release/"))
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let uid = text
            .split("--uid")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|uid| uid.parse().ok())
            .expect("the Dockerfile creates its user with --uid");
        Self { binaries, uid }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_uses_only_what_was_defined_before() {
        let defined = vec![("A".to_owned(), "1".to_owned())];
        let (value, names, unknown) = expand("x$(A)y$(B)", &defined);
        assert_eq!(value, "x1y$(B)");
        assert_eq!(names, ["A", "B"]);
        assert_eq!(unknown, ["B"]);
    }
}
