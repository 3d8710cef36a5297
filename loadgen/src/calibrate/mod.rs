//! The machine's ceiling, measured the way the services use the servers, so every figure
//! of a load run can be read as a share of what this box can do.
//!
//! # Layout
//! - [`raw`]: PostgreSQL commits and RabbitMQ confirmed persistent messages, one kind at a
//!   time.
//! - [`saga`]: the system's whole message pattern — every publish, delivery, ack and
//!   commit of a saga — with no service code: sagas per second, latency and CPU per saga.
//! - [`cpu`]: CPU time of PostgreSQL, RabbitMQ and this process, read from /proc.

mod cpu;
mod raw;
mod saga;

use crate::args::Args;
use raw::CLIENTS;
use serde_json::json;
use std::time::Duration;

/// Runs the measurements `args` asks for and prints them; `Ok(true)` when all ran.
pub async fn run(args: &Args) -> Result<bool, String> {
    let window = Duration::from_secs(args.calibrate_secs);
    let mut report = serde_json::Map::new();
    let mut lines = Vec::new();
    if !args.calibrate_saga_only {
        let url = &args.calibrate_database_url;
        let single = raw::postgres(url, window, false).await?;
        let triple = raw::postgres(url, window, true).await?;
        let pipelined = raw::rabbitmq(&args.amqp_url, window, true).await?;
        let awaited = raw::rabbitmq(&args.amqp_url, window, false).await?;
        report.insert("postgres_single_row_commits_per_s".into(), json!(single));
        report.insert(
            "postgres_three_statement_transactions_per_s".into(),
            json!(triple),
        );
        report.insert(
            "rabbitmq_confirmed_persistent_pipelined_per_s".into(),
            json!(pipelined),
        );
        report.insert(
            "rabbitmq_confirmed_persistent_awaited_per_s".into(),
            json!(awaited),
        );
        lines.push(format!(
            "PostgreSQL  {single:>8.0} single-row commits/s ({CLIENTS} clients)"
        ));
        lines.push(format!(
            "PostgreSQL  {triple:>8.0} three-statement transactions/s ({CLIENTS} clients)"
        ));
        lines.push(format!(
            "RabbitMQ    {pipelined:>8.0} persistent messages/s, confirms pipelined, published + consumed + acked"
        ));
        lines.push(format!(
            "RabbitMQ    {awaited:>8.0} persistent messages/s, each confirm awaited, published + consumed + acked"
        ));
    }
    let shape = saga::measure(&args.calibrate_database_url, &args.amqp_url, window).await?;
    report.insert("saga_shape".into(), shape.to_json());
    lines.push(shape.line());
    if args.json {
        println!("{}", serde_json::Value::Object(report));
    } else {
        for line in lines {
            println!("{line}");
        }
    }
    Ok(true)
}
