//! `loadgen`: puts the running system under load and reports what it did.
//!
//! It places orders through `POST /api/orders` (closed loop with `--concurrency`, or open
//! loop at `--rate`, for `--duration` seconds if asked), each with an `Idempotency-Key` of
//! its own; a 503 (load shed, CONTRACT §9) gives the order up, or with `--retry-shed` is
//! retried after its `Retry-After` with the same key. It learns when each saga ends from
//! its own queue bound to `order.confirmed` and `order.cancelled` (no polling; read as
//! `common`'s events), then prints POST latency (all answers, 201s, 503s), the load shed,
//! end-to-end throughput and saga latency, and checks CONTRACT §6 for its orders with the
//! checker the end-to-end tests use.
//! `loadgen provider` instead serves a stand-in card processor (CONTRACT §7) for benchmarks
//! of the HTTP payment path.
//! `--calibrate` instead measures the machine's ceiling: PostgreSQL commits and RabbitMQ
//! confirmed persistent messages per second, and the saga's whole message pattern with no
//! service code (sagas per second, latency, CPU per saga).
//!
//! # Layout
//! - [`args`]: the command line.
//! - [`watch`]: the terminal-event subscription.
//! - [`drive`]: placing orders, with a progress bar.
//! - [`report`]: percentiles and the printed summary.
//! - [`check`]: the invariants for the orders of this run: collects what the checker the
//!   end-to-end tests share (`saga_invariants`) reads, and lets it judge.
//! - [`calibrate`]: the ceilings: raw, and saga-shaped.
//! - [`provider`]: the benchmark's payment provider.

mod args;
mod calibrate;
mod check;
mod drive;
mod provider;
mod report;
mod watch;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match args::Args::parse_resolved() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("loadgen: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = if let Some(args::Command::Provider(provider)) = &args.command {
        provider::run(provider).await
    } else if args.calibrate {
        calibrate::run(&args).await
    } else {
        run(&args).await
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}

/// How long the invariants may take to hold after the last saga ended: loadgen hears of
/// an ending at the same moment as notification-service, which may still be recording it.
const QUIET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Checks the invariants until they hold or [`QUIET_TIMEOUT`] passes; the last problems.
async fn check_until_quiet(
    http: &reqwest::Client,
    args: &args::Args,
    run: &drive::Run,
    before: &check::Stock,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + QUIET_TIMEOUT;
    loop {
        let problems = check::invariants(http, args, run, before).await;
        if problems.is_empty() || tokio::time::Instant::now() >= deadline {
            return problems;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// One load run; `Ok(false)` when an invariant does not hold or sagas did not finish.
async fn run(args: &args::Args) -> Result<bool, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &args.admin_token {
        // Restocking and reading dead-letter depths are admin routes (CONTRACT §8).
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "ADMIN_TOKEN is not a valid header value".to_owned())?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(args.concurrency)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let watcher = watch::Watcher::start(&args.amqp_url, &args.exchange).await?;
    let before = check::stock(&http, &args.inventory_url).await?;
    if !args.no_restock {
        drive::restock(&http, args, &before).await?;
    }
    let before = check::stock(&http, &args.inventory_url).await?;
    let run = drive::place_orders(&http, args, &watcher).await;
    let finished = watcher
        .wait_for(&run.placed_ids(), args.settle_timeout(), !args.json)
        .await;
    let report = report::Report::new(args, &run, &finished);
    let problems = if args.no_check {
        None
    } else {
        Some(check_until_quiet(&http, args, &run, &before).await)
    };
    report.print(args.json, problems.as_deref());
    Ok(problems.is_none_or(|p| p.is_empty()) && report.unfinished == 0)
}
