//! The documentation stays true to the tree: every relative link in README.md,
//! BENCHMARKS.md and docs/*.md names a file that exists (and, for a Markdown page with an
//! anchor, a heading in it), and every command README.md shows names a package, script or
//! loadgen flag that still exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// The Markdown pages the checks read: the two at the top and every page under docs/.
fn pages() -> Vec<PathBuf> {
    let root = root();
    let mut pages = vec![root.join("README.md"), root.join("BENCHMARKS.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The text outside fenced code blocks (links inside code are examples, not links).
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut kept = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// The targets of `[text](target)` links.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        if let Some(end) = rest.find(')') {
            targets.push(rest[..end].trim().to_owned());
            rest = &rest[end..];
        }
    }
    targets
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors_of(page: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(page).unwrap_or_default();
    prose(&text)
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|line| slug(line.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_relative_link_in_the_docs_names_a_file_and_heading_that_exist() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("a page");
        for target in link_targets(&prose(&text)) {
            if target.starts_with("http://") || target.starts_with("https://") || target.is_empty()
            {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                page.clone()
            } else {
                page.parent().expect("a folder").join(path)
            };
            if !file.exists() {
                broken.push(format!("{}: {target} (no such file)", page.display()));
                continue;
            }
            if let Some(anchor) = anchor
                && file.extension().is_some_and(|e| e == "md")
                && !anchors_of(&file).contains(anchor)
            {
                broken.push(format!("{}: {target} (no such heading)", page.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links:\n  {}",
        broken.join("\n  ")
    );
}

/// The README's shell lines: those in its fenced `bash` blocks, and the two at the top.
fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let mut commands = Vec::new();
    let mut in_bash = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_bash = !in_bash && trimmed.trim_start_matches('`').starts_with("bash");
            continue;
        }
        if in_bash && !trimmed.starts_with('#') && !trimmed.is_empty() {
            commands.push(trimmed.to_owned());
        }
    }
    commands
}

fn workspace_packages() -> BTreeSet<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let members: Vec<&str> = manifest
        .split("members = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("a members list")
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .collect();
    members
        .iter()
        .map(|member| {
            let toml = std::fs::read_to_string(root().join(member).join("Cargo.toml"))
                .expect("a member's Cargo.toml");
            toml.lines()
                .find_map(|line| {
                    line.strip_prefix("name = ")
                        .map(|name| name.trim_matches('"').to_owned())
                })
                .expect("a package name")
        })
        .collect()
}

#[test]
fn every_command_the_readme_shows_names_what_exists() {
    let packages = workspace_packages();
    let loadgen_args =
        std::fs::read_to_string(root().join("loadgen/src/args.rs")).expect("loadgen's args");
    let commands = readme_commands();
    assert!(
        commands.iter().any(|c| c.starts_with("./scripts/test")),
        "the README's test command is gone: {commands:#?}"
    );
    let mut stale = Vec::new();
    for command in &commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        for pair in words.windows(2) {
            if pair[0] == "-p" && !packages.contains(pair[1]) {
                stale.push(format!("{command}: no package {}", pair[1]));
            }
        }
        for word in &words {
            let path = word.trim_start_matches("./");
            if (path.starts_with("scripts/") || path.starts_with("bench/"))
                && !root().join(path).exists()
            {
                stale.push(format!("{command}: no file {path}"));
            }
        }
        if command.contains("loadgen ") {
            for flag in words.iter().filter_map(|w| w.strip_prefix("--")) {
                let field = format!("pub {}:", flag.replace('-', "_"));
                if !loadgen_args.contains(&field) {
                    stale.push(format!("{command}: loadgen has no --{flag}"));
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale commands:\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn the_readme_stays_short_enough_to_read_to_the_end() {
    let text = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let lines = text.lines().count();
    assert!(
        lines < 350,
        "README.md has {lines} lines: move reference to docs/"
    );
}
