//! The process around a service: read its configuration, set up logging, run it on a
//! runtime until SIGTERM or SIGINT, and turn the result into an exit code.
//!
//! `--check-config` stops after the first step: it validates the environment as a start
//! would (variables, URLs, the TLS files they name) without connecting anywhere, prints
//! the variables the service reads, and exits 0, or 2 with the message — so a deployment's
//! environment can be checked before it is rolled out.

use super::StartupError;
use crate::config::CommonConfig;
use crate::service::Descriptor;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long the runtime waits for blocking tasks once `main` is done.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);

/// A service's configuration: its own settings plus the common ones, read for `service`.
pub trait ServiceConfig: Sized {
    fn from_vars(
        service: Descriptor,
        vars: &crate::vars::Vars,
    ) -> Result<Self, crate::vars::ConfigError>;
    fn common(&self) -> &CommonConfig;
}

/// The configuration of a service with no settings of its own: the common ones.
impl ServiceConfig for CommonConfig {
    fn from_vars(
        service: Descriptor,
        vars: &crate::vars::Vars,
    ) -> Result<Self, crate::vars::ConfigError> {
        CommonConfig::from_vars(service, vars)
    }

    fn common(&self) -> &CommonConfig {
        self
    }
}

/// Exit code of a configuration that cannot work: a bad variable, an unknown argument, a
/// TLS handshake that fails at start.
const MISCONFIGURED: u8 = 2;

/// The flag that only validates the configuration.
pub const CHECK_CONFIG: &str = "--check-config";

/// The body of every service's `main`: read the configuration (exit 2 naming the bad
/// variable), set up logging, run until SIGTERM or SIGINT, exit 0 after a clean stop.
pub fn main<C, F, Fut>(service: Descriptor, run: F) -> std::process::ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), StartupError>>,
{
    let check_only = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => false,
        [flag] if flag == CHECK_CONFIG => true,
        _ => {
            eprintln!("usage: the service takes no arguments but {CHECK_CONFIG}");
            return std::process::ExitCode::from(MISCONFIGURED);
        }
    };
    let vars = crate::vars::Vars::from_env();
    let config = match C::from_vars(service, &vars) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("configuration error: {error}");
            return std::process::ExitCode::from(MISCONFIGURED);
        }
    };
    if check_only {
        println!(
            "{}: the configuration is valid (nothing was connected to)",
            config.common().service.name
        );
        println!("reads: {}", vars.names_read().join(" "));
        return std::process::ExitCode::SUCCESS;
    }
    // Kept to the end of `main`: dropping it flushes the spans not yet exported.
    let _tracing = crate::telemetry::init(config.common());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        match run(config, shutdown).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "failed to start");
                if error.is_misconfiguration() {
                    std::process::ExitCode::from(MISCONFIGURED)
                } else {
                    std::process::ExitCode::FAILURE
                }
            }
        }
    });
    // Dropping a runtime waits for its blocking tasks without limit; tasks still stuck on
    // a dead link must not keep the process alive.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    code
}

/// Cancels `token` on the first SIGTERM or SIGINT.
async fn cancel_on_signal(token: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
    token.cancel();
}
