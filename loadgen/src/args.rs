//! The command line.

use clap::Parser;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Puts the order saga under load and reports throughput and saga latency"
)]
pub struct Args {
    /// `provider`: serve a stand-in card processor instead of placing orders.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Orders to place (with `--duration`, `--rate` × `--duration` instead).
    #[arg(long, default_value_t = 1000)]
    pub orders: usize,
    /// Orders in flight at most (POSTs awaiting their answer). In a closed loop an order
    /// keeps its slot while it waits to retry after a 503 (`--retry-shed`): a client that
    /// backs off does not place another order meanwhile. At `--rate` the slot is held only
    /// during a POST, so backing-off orders do not slow the offered load.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Offered load in orders per second (open loop); without it, as fast as `--concurrency` allows.
    #[arg(long)]
    pub rate: Option<f64>,
    /// A paced run: offer `--rate` orders per second for this many seconds (so `--orders`
    /// is `--rate` × SECS), e.g. the overload step of bench/overload.sh.
    #[arg(
        long,
        value_name = "SECS",
        requires = "rate",
        conflicts_with = "orders"
    )]
    pub duration: Option<f64>,
    /// Retry a POST answered 503 (load shed, CONTRACT §9) after its `Retry-After` (1 s when
    /// it has none), with the order's same `Idempotency-Key`, until it is accepted or
    /// `--settle-secs` have passed since its first try. Without it a 503 gives the order up.
    #[arg(long)]
    pub retry_shed: bool,
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
    /// Seconds to wait, after the last POST, for every saga to end; with `--retry-shed`
    /// also how long an order keeps retrying after its first try.
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
    /// PostgreSQL for `--calibrate` (scratch tables and schemas are created and dropped
    /// there).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub calibrate_database_url: String,
    /// Seconds each `--calibrate` measurement runs. The saga shape's closed loop posts this
    /// long and then waits for its sagas to end; its paced step posts 100 × this orders.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub calibrate_secs: u64,
    /// With `--calibrate`, measure only the saga shape (skip the raw PostgreSQL and RabbitMQ
    /// ceilings).
    #[arg(long, requires = "calibrate")]
    pub calibrate_saga_only: bool,
    /// Cancel this share (0 to 1) of the accepted orders, each at a random moment within
    /// 2 s of its acceptance — before or after it completes (CONTRACT §15).
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    pub cancel_rate: f64,
}

/// A share from 0 to 1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("{text:?} is not a share from 0 to 1")),
    }
}

/// What loadgen does besides placing orders.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// A fast in-memory payment provider (CONTRACT §7) to point PAYMENT_PROVIDER_URL at.
    Provider(crate::provider::ProviderArgs),
}

impl Args {
    /// The command line, with `--orders` worked out from `--rate` × `--duration`.
    pub fn parse_resolved() -> Result<Self, String> {
        Self::parse().resolved()
    }

    fn resolved(mut self) -> Result<Self, String> {
        if let (Some(rate), Some(secs)) = (self.rate, self.duration) {
            let orders = rate * secs;
            if !orders.is_finite() || orders < 1.0 {
                return Err(format!(
                    "--rate {rate} for --duration {secs} offers no order"
                ));
            }
            self.orders = orders.round() as usize;
        }
        if self
            .rate
            .is_some_and(|rate| !(rate.is_finite() && rate > 0.0))
        {
            return Err("--rate must be a positive number".into());
        }
        Ok(self)
    }

    /// The order-service replica that answers reads and the final check.
    pub fn order_url(&self) -> &str {
        &self.order_urls[0]
    }

    pub fn settle_timeout(&self) -> Duration {
        Duration::from_secs(self.settle_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?
            .resolved()
    }

    #[test]
    fn a_paced_run_offers_rate_times_duration_orders() {
        let args = parse(&["--rate", "1800", "--duration", "60"]).unwrap();
        assert_eq!(args.orders, 108_000);
        assert_eq!(
            parse(&["--rate", "2.5", "--duration", "3"]).unwrap().orders,
            8
        );
    }

    #[test]
    fn duration_needs_a_rate_and_excludes_orders() {
        assert!(parse(&["--duration", "60"]).is_err());
        assert!(parse(&["--rate", "10", "--duration", "6", "--orders", "5"]).is_err());
        assert!(parse(&["--rate", "10", "--duration", "0"]).is_err());
        assert!(parse(&["--rate", "0"]).is_err());
        assert_eq!(parse(&["--orders", "5"]).unwrap().orders, 5);
    }

    #[test]
    fn provider_takes_its_latency_decline_rate_and_port() {
        let args = parse(&[
            "provider",
            "--latency-ms",
            "150",
            "--decline-rate",
            "0.2",
            "--port",
            "9100",
        ])
        .unwrap();
        let Some(Command::Provider(provider)) = args.command else {
            panic!("no provider command: {args:?}");
        };
        assert_eq!((provider.latency_ms, provider.port), (150, 9100));
        assert_eq!(provider.decline_rate, 0.2);
        assert!(parse(&["provider", "--decline-rate", "1.5"]).is_err());
        assert!(parse(&["--orders", "5"]).unwrap().command.is_none());
    }
}
