//! The command line.

use clap::Parser;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Puts the order saga under load and reports throughput and saga latency"
)]
pub struct Args {
    /// Orders to place.
    #[arg(long, default_value_t = 1000)]
    pub orders: usize,
    /// Orders in flight at most (POSTs awaiting their answer).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Offered load in orders per second (open loop); without it, as fast as `--concurrency` allows.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Products to order from; each order takes one unit of one or two of them.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "load-1,load-2,load-3,load-4,load-5,load-6,load-7,load-8"
    )]
    pub products: Vec<String>,
    /// order-service; several (comma-separated) replicas take the POSTs in turn.
    #[arg(
        long = "order-url",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8000"
    )]
    pub order_urls: Vec<String>,
    #[arg(long, default_value = "http://127.0.0.1:8001")]
    pub inventory_url: String,
    #[arg(long, default_value = "http://127.0.0.1:8002")]
    pub payment_url: String,
    #[arg(long, default_value = "http://127.0.0.1:8003")]
    pub notification_url: String,
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    #[arg(long, env = "AMQP_EXCHANGE", default_value = "orders")]
    pub exchange: String,
    /// The services' admin token, for restocking and the dead-letter check.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Seconds to wait, after the last POST, for every saga to end.
    #[arg(long, default_value_t = 120)]
    pub settle_secs: u64,
    /// Do not set up stock for the run (orders may then run out).
    #[arg(long)]
    pub no_restock: bool,
    /// Skip the invariant check at the end.
    #[arg(long)]
    pub no_check: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Measure the machine's ceiling instead of running orders.
    #[arg(long)]
    pub calibrate: bool,
    /// PostgreSQL for `--calibrate` (a scratch table is created and dropped there).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub calibrate_database_url: String,
    /// Seconds each `--calibrate` measurement runs.
    #[arg(long, default_value_t = 5)]
    pub calibrate_secs: u64,
}

impl Args {
    /// The order-service replica that answers reads and the final check.
    pub fn order_url(&self) -> &str {
        &self.order_urls[0]
    }

    pub fn settle_timeout(&self) -> Duration {
        Duration::from_secs(self.settle_secs)
    }
}
