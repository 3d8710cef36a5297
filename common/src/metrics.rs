//! Prometheus metrics: the recorder is installed once per process and rendered by
//! `GET /metrics`.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `messages_consumed_total` | counter | `event_type`, `outcome` (`handled`, `retried`, `dead_lettered`) |
//! | `messages_published_total` | counter | `event_type` |
//! | `messages_retried_total` | counter | `event_type` |
//! | `messages_dead_lettered_total` | counter | `event_type` |
//! | `handler_duration_seconds` | histogram | `event_type` |
//! | `http_requests_total` | counter | `method`, `path`, `status` |
//! | `http_request_duration_seconds` | histogram | `method`, `path` |
//! | `outbox_backlog` | gauge | — |
//! | `saga_duration_seconds` | histogram | `status` (recorded by the service that ends a saga: from its start to its end) |

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide Prometheus handle, installing the recorder on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(&LATENCY_BUCKETS)
            .expect("the bucket list is not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed (e.g. a test harness); rendering
        // then shows nothing, which is harmless.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
