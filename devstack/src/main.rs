//! `cargo run -p devstack`: builds and starts the four services against local PostgreSQL
//! and RabbitMQ, prints their logs with a coloured prefix, and on Ctrl-C or SIGTERM stops
//! them gracefully. Settings pass through from the environment (README, "Configuration");
//! with `LOG_FORMAT=json` the lines are printed as they are, ready for `jq`.
//!
//! `--auth` (or `DEVSTACK_AUTH=1`) turns customer authentication on with a key pair made
//! for the run, and prints a customer token and an `orders:admin` token (README, "Security").

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

const COLOURS: [&str; 4] = ["\x1b[36m", "\x1b[33m", "\x1b[35m", "\x1b[32m"];

/// The customer the printed customer token speaks for (the README's walkthrough customer).
const DEV_CUSTOMER: &str = "customer-123";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let auth = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => std::env::var("DEVSTACK_AUTH").is_ok_and(|v| v == "1" || v == "true"),
        [flag] if flag == "--auth" => true,
        _ => {
            eprintln!("usage: devstack [--auth]");
            return ExitCode::from(2);
        }
    };
    let mut env: Vec<(&str, String)> = Vec::new();
    let mut tokens = None;
    if auth {
        let made = devstack::auth::DevIssuer::generate().and_then(|issuer| {
            let customer = issuer.token(DEV_CUSTOMER, None)?;
            let admin = issuer.token("devstack-admin", Some("orders:admin"))?;
            Ok((issuer.public_pem, customer, admin))
        });
        match made {
            Ok((public_pem, customer, admin)) => {
                env.push(("AUTH_PUBLIC_KEY", public_pem));
                env.push(("AUTH_ISSUER", devstack::auth::ISSUER.to_owned()));
                env.push(("AUTH_AUDIENCE", devstack::auth::AUDIENCE.to_owned()));
                tokens = Some((customer, admin));
            }
            Err(error) => {
                eprintln!("devstack: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("devstack: building the four services (the first build takes a few minutes)");
    let build = tokio::task::spawn_blocking(|| devstack::build_services(true)).await;
    if let Ok(Err(error)) | Err(error) = build.map_err(std::io::Error::other) {
        eprintln!("devstack: {error}");
        return ExitCode::FAILURE;
    }
    let admin_token = match std::env::var("ADMIN_TOKEN") {
        Ok(token) if !token.is_empty() => token,
        _ => match random_token() {
            Ok(token) => token,
            Err(error) => {
                eprintln!("devstack: cannot make an admin token: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    let mut children = Vec::new();
    for (name, colour) in devstack::SERVICES.iter().zip(COLOURS) {
        match start(name, colour, &admin_token, &env) {
            Ok(child) => children.push(child),
            Err(error) => {
                eprintln!("devstack: cannot start {name}: {error}");
                terminate(&children);
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!(
        "devstack: API on http://localhost:8000 (inventory :8001, payment :8002, notification :8003); Ctrl-C stops"
    );
    eprintln!(
        "devstack: admin routes (PUT /api/inventory/…, /admin/…) need: Authorization: Bearer {admin_token}"
    );
    if let Some((customer, admin)) = &tokens {
        eprintln!(
            "devstack: authentication is on (issuer {}, audience {}, a key pair made for this run); tokens valid for {} h:",
            devstack::auth::ISSUER,
            devstack::auth::AUDIENCE,
            devstack::auth::TOKEN_LIFETIME.as_secs() / 3600
        );
        eprintln!("devstack:   customer {DEV_CUSTOMER}: CUSTOMER_TOKEN={customer}");
        eprintln!("devstack:   orders:admin:       ADMIN_JWT={admin}");
    }

    let (Ok(mut interrupt), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("devstack: cannot watch for signals");
        terminate(&children);
        return ExitCode::FAILURE;
    };
    let early_exit = loop {
        tokio::select! {
            _ = interrupt.recv() => break false,
            _ = term.recv() => break false,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                if children.iter_mut().any(|child| matches!(child.try_wait(), Ok(Some(_)))) {
                    eprintln!("devstack: a service exited; stopping the others");
                    break true;
                }
            }
        }
    };
    terminate(&children);
    for child in &mut children {
        let _ = child.wait();
    }
    if early_exit {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A fresh admin token for this run (CONTRACT §8): 32 hex digits from the kernel's CSPRNG.
fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Starts one service with its output prefixed by its name.
fn start(
    name: &str,
    colour: &str,
    admin_token: &str,
    env: &[(&str, String)],
) -> std::io::Result<Child> {
    let mut child = Command::new(devstack::binary(name)?)
        .env("ADMIN_TOKEN", admin_token)
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // JSON lines name their service already; unprefixed, they pipe straight into jq.
    let json_logs = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let prefix = if json_logs {
        String::new()
    } else {
        format!("{colour}{name:>20}\x1b[0m │ ")
    };
    if let Some(stdout) = child.stdout.take() {
        relay(stdout, prefix.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        relay(stderr, prefix);
    }
    Ok(child)
}

fn relay(stream: impl Read + Send + 'static, prefix: String) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            println!("{prefix}{line}");
        }
    });
}

/// Asks every service to stop; each finishes its in-flight work first.
fn terminate(children: &[Child]) {
    for child in children {
        let _ = devstack::signal(child.id(), "TERM");
    }
}
