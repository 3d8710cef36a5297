//! `deploy/k8s` as an operator prepares it: a copy in a folder of the test's, with the
//! files docs/security.md has the operator write (never committed) — or without them, as a
//! fresh clone has it — and rendering it with `kubectl kustomize`.

use super::{Rendered, kubectl, repository};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The files an operator writes into `deploy/k8s` before rendering it (docs/security.md),
/// which are never committed: the admin token, the OpenID issuer, the trial's passwords.
pub const OPERATOR_FILES: [&str; 3] = [
    "base/admin-token.env",
    "base/auth.env",
    "overlays/trial/credentials.env",
];

/// The issuer the test's operator names in `auth.env`.
pub const OPERATOR_ISSUER: &str = "https://id.example.com/realms/shop";

/// A copy of `deploy/k8s` in a folder of the test's, without any operator file the working
/// tree may hold; removed on drop.
pub struct Deployment {
    pub root: PathBuf,
    /// The token written to `admin-token.env`, when it was.
    pub admin_token: Option<String>,
}

impl Deployment {
    /// The committed tree only, as a fresh clone has it.
    pub fn as_committed() -> Self {
        let root = std::env::temp_dir().join(format!(
            "saga-k8s-tree-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        copy_dir(&repository().join("deploy/k8s"), &root);
        for file in OPERATOR_FILES {
            let _ = std::fs::remove_file(root.join(file));
        }
        Self {
            root,
            admin_token: None,
        }
    }

    /// The tree as an operator following docs/security.md prepares it: a random admin
    /// token, an issuer, random trial passwords.
    pub fn prepared() -> Self {
        let mut tree = Self::as_committed();
        let random = || {
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            )
        };
        let token = random();
        let files = [
            ("base/admin-token.env", format!("ADMIN_TOKEN={token}\n")),
            ("base/auth.env", format!("AUTH_ISSUER={OPERATOR_ISSUER}\n")),
            (
                "overlays/trial/credentials.env",
                format!(
                    "rabbitmq-password={}\npostgres-password={}\n",
                    &random()[..32],
                    &random()[..32]
                ),
            ),
        ];
        for (file, text) in files {
            std::fs::write(tree.root.join(file), text).expect("an operator file");
        }
        tree.admin_token = Some(token);
        tree
    }

    /// Every overlay under `overlays/`, by name.
    pub fn overlays(&self) -> Vec<(String, PathBuf)> {
        let dir = self.root.join("overlays");
        let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
            .flatten()
            .filter(|entry| entry.path().join("kustomization.yaml").exists())
            .map(|entry| {
                (
                    entry.file_name().to_string_lossy().into_owned(),
                    entry.path(),
                )
            })
            .collect();
        found.sort();
        assert!(!found.is_empty(), "no overlay in {}", dir.display());
        found
    }

    /// Every overlay, rendered.
    pub fn render(&self) -> Vec<Rendered> {
        self.overlays()
            .iter()
            .map(|(name, dir)| Rendered::render(name, dir))
            .collect()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a folder for the copy");
    for entry in std::fs::read_dir(from).expect("deploy/k8s reads").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a copy");
        }
    }
}

/// `kubectl kustomize dir`: the YAML, or what kubectl said when it failed.
pub fn kustomize(dir: &Path) -> Result<String, String> {
    let output = Command::new(kubectl())
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|error| panic!("kubectl cannot run ({error}); ./scripts/test installs it"));
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).expect("YAML is UTF-8"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}
