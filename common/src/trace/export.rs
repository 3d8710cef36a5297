//! The process's tracer provider: exporting over OTLP/HTTP when an endpoint is set, and
//! whether spans have an OpenTelemetry identity at all.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::registry::LookupSpan;

/// Whether this process's spans have an OpenTelemetry identity (an endpoint is set);
/// otherwise contexts are carried through unchanged ([`Carried`](super::carried::Carried)).
static EXPORTING: AtomicBool = AtomicBool::new(false);

pub(super) fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The tracer provider of the process; dropping it flushes and stops the exporter.
pub struct Tracing {
    provider: SdkTracerProvider,
    exporting: bool,
}

impl Tracing {
    /// A provider exporting to `endpoint` over OTLP/HTTP, or one that samples nothing.
    pub fn new(endpoint: Option<&str>, service_name: &str) -> Self {
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(service_name.to_owned())
            .build();
        let builder = SdkTracerProvider::builder().with_resource(resource);
        let exporter = endpoint.and_then(|_| {
            // The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and appends /v1/traces); the
            // batch processor reads OTEL_BSP_SCHEDULE_DELAY and its siblings.
            use opentelemetry_otlp::WithExportConfig;
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .build()
                .inspect_err(|error| eprintln!("OTLP exporter not started: {error}"))
                .ok()
        });
        let exporting = exporter.is_some();
        let provider = match exporter {
            Some(exporter) => builder
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
                .with_batch_exporter(exporter)
                .build(),
            None => builder
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
                .build(),
        };
        Self {
            provider,
            exporting,
        }
    }

    /// The `tracing` layer that gives spans their OpenTelemetry identity, when they are
    /// exported; `None` (contexts carried through unchanged) when not. Call it once, for
    /// the subscriber that is installed.
    pub fn layer<S>(&self, service_name: &'static str) -> Option<impl tracing_subscriber::Layer<S>>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        EXPORTING.store(self.exporting, Ordering::Relaxed);
        self.exporting.then(|| {
            tracing_opentelemetry::layer()
                .with_tracer(self.provider.tracer(service_name))
                .with_tracked_inactivity(false)
        })
    }
}

impl Drop for Tracing {
    /// Flushes the last spans, briefly: an unreachable collector must not hold up the exit.
    fn drop(&mut self) {
        let _ = self
            .provider
            .shutdown_with_timeout(std::time::Duration::from_secs(2));
    }
}
