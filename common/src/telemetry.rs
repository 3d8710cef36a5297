//! Logging: `RUST_LOG` picks what is written, `LOG_FORMAT` how.
//!
//! Every consumed message runs inside a `message` span carrying `order_id`, `event_type`,
//! `message_id` and `causation_id`, so each line about an order can be found by its id:
//! in the pretty format the span prefixes the line, in JSON it is the `span` object.

use crate::config::{CommonConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. A second call (several services in one test process)
/// keeps the first and returns quietly.
pub fn init(config: &CommonConfig) {
    let filter = EnvFilter::try_new(quiet_notices(&config.log_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match config.log_format {
        LogFormat::Pretty => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// PostgreSQL reports "relation already exists, skipping" and the like as notices, which
/// sqlx logs at INFO on every start; keep them out unless the filter asks for sqlx.
fn quiet_notices(filter: &str) -> String {
    if filter.contains("sqlx") {
        filter.to_owned()
    } else {
        format!("{filter},sqlx::postgres::notice=warn")
    }
}
