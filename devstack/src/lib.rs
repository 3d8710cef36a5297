//! Finding, building and signalling the service binaries, for the dev launcher and the
//! end-to-end tests; [`auth`]: the launcher's own key pair and tokens for `--auth`.

pub mod auth;

use std::io;
use std::path::PathBuf;
use std::process::Command;

/// The four service binaries, in start order.
pub const SERVICES: [&str; 4] = [
    "order-service",
    "inventory-service",
    "payment-service",
    "notification-service",
];

/// The directory cargo writes this build's binaries to: the running executable's own, or
/// its parent when the executable is a test in `deps/`.
pub fn bin_dir() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| io::Error::other("the executable has no directory"))?;
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// The path of one service binary of this build.
pub fn binary(name: &str) -> io::Result<PathBuf> {
    Ok(bin_dir()?.join(name))
}

/// Builds the four service binaries and `loadgen` with the same profile as the running
/// executable, so a launcher or test never runs stale ones. One cargo invocation for all
/// five keeps one feature set, so no shared dependency is built twice. A no-op build takes
/// well under a second; `progress` shows cargo's progress lines (the first build takes
/// minutes).
pub fn build_services(progress: bool) -> io::Result<()> {
    let packages = SERVICES.iter().copied().chain(["loadgen"]);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--bins"]);
    if !progress {
        command.arg("--quiet");
    }
    for package in packages {
        command.args(["-p", package]);
    }
    if bin_dir()?.ends_with("release") {
        command.arg("--release");
    }
    let status = command.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "building the services failed: {status}"
        )))
    }
}

/// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`, `INT`) with the system's `kill`,
/// which keeps this workspace free of `unsafe`.
pub fn signal(pid: u32, name: &str) -> io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "kill -{name} {pid} failed: {status}"
        )))
    }
}
