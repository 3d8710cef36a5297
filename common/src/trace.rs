//! Distributed tracing by the W3C Trace Context standard (CONTRACT §10).
//!
//! Spans are `tracing` spans; the `tracing-opentelemetry` layer gives each one an
//! OpenTelemetry identity. The context crosses process boundaries as `traceparent` /
//! `tracestate`: read from HTTP requests ([`http_server_span`]), written into the outbox with
//! each event ([`TraceHeaders::for_publish`]) and sent as AMQP headers by the relay, read
//! back by the consumer ([`continue_from_amqp`]). With `OTEL_EXPORTER_OTLP_ENDPOINT` set,
//! finished spans go out over OTLP/HTTP (protobuf) in batches.
//!
//! Without an endpoint nothing is exported, so the OpenTelemetry layer is not installed (it
//! cost ~0.3 ms of CPU per saga, ~10 % of the closed loop: BENCHMARKS.md "Where the speed
//! went"), but the context still travels so a caller's trace is not broken: a span that
//! continues a context keeps it as it came ([`Carried`]), and whatever is published inside
//! it passes that context on unchanged — same trace, the caller's span as the parent, since
//! the spans in between are never seen.

use axum::extract::MatchedPath;
use axum::http::{HeaderMap, Request};
use lapin::types::{AMQPValue, FieldTable};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::{LookupSpan, Registry};

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Whether this process's spans have an OpenTelemetry identity (an endpoint is set);
/// otherwise contexts are carried through unchanged ([`Carried`]).
static EXPORTING: AtomicBool = AtomicBool::new(false);

fn exporting() -> bool {
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

/// Whether `metadata` is one of the spans a saga's trace is made of: `common`'s and the
/// service's own (`own_crate`) at `INFO` (HTTP server, consumer, transaction and publish
/// spans are made in `common`). They are created whatever `RUST_LOG` says, since they carry
/// the trace on.
pub fn is_traced_span(metadata: &tracing::Metadata<'_>, own_crate: &str) -> bool {
    let target = metadata.target().split("::").next().unwrap_or_default();
    metadata.is_span()
        && *metadata.level() <= tracing::Level::INFO
        && (target == "common" || target == own_crate)
}

/// The trace id of the current span, if it belongs to a trace (for log lines).
pub fn current_trace_id() -> Option<String> {
    if !exporting() {
        let carried = Carried::nearest(&Span::current())?;
        // `00-<trace id>-<parent id>-<flags>`
        return carried.0.traceparent?.get(3..35).map(str::to_owned);
    }
    let context = Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// The W3C headers that carry a span's context to the next process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceHeaders {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl TraceHeaders {
    /// The context of `span`.
    pub fn of(span: &Span) -> Self {
        if !exporting() {
            return Carried::nearest(span)
                .map(|carried| carried.0)
                .unwrap_or_default();
        }
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
        Self {
            traceparent: carrier.remove(TRACEPARENT),
            tracestate: carrier.remove(TRACESTATE).filter(|s| !s.is_empty()),
        }
    }

    /// A producer span for one event published with `routing_key`, a child of the current
    /// span, and the headers that make the consumer's span its child.
    pub fn for_publish(routing_key: &str) -> Self {
        if !exporting() {
            return Self::of(&Span::current());
        }
        let span = tracing::info_span!(
            "publish",
            otel.name = format!("{routing_key} publish"),
            otel.kind = "producer",
            messaging.system = "rabbitmq",
            messaging.operation.type = "send",
            messaging.rabbitmq.destination.routing_key = routing_key,
        );
        Self::of(&span)
    }

    /// The AMQP headers for these values.
    pub fn write_to(&self, headers: &mut FieldTable) {
        for (name, value) in [
            (TRACEPARENT, &self.traceparent),
            (TRACESTATE, &self.tracestate),
        ] {
            if let Some(value) = value {
                headers.insert(name.into(), AMQPValue::LongString(value.as_str().into()));
            }
        }
    }

    /// Makes `span` (not yet entered) continue the trace these headers carry.
    pub fn continue_in(&self, span: &Span) {
        if !exporting() {
            // Kept only if it is worth passing on, as the propagator would judge it.
            if self.traceparent.as_deref().is_some_and(is_traceparent) {
                let tracestate = self.tracestate.clone().filter(|s| !s.is_empty());
                Carried(Self {
                    traceparent: self.traceparent.clone(),
                    tracestate,
                })
                .attach(span);
            }
            return;
        }
        let carrier: HashMap<String, String> = [
            (TRACEPARENT, &self.traceparent),
            (TRACESTATE, &self.tracestate),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value.clone()?)))
        .collect();
        if carrier.is_empty() {
            return;
        }
        let parent = TraceContextPropagator::new().extract(&carrier);
        let _ = span.set_parent(parent);
    }

    /// The trace context a message carries in its headers.
    pub fn from_amqp(headers: Option<&FieldTable>) -> Self {
        let read = |name: &str| match headers?.inner().get(name)? {
            AMQPValue::LongString(text) => Some(text.to_string()),
            AMQPValue::ShortString(text) => Some(text.as_str().to_owned()),
            _ => None,
        };
        Self {
            traceparent: read(TRACEPARENT),
            tracestate: read(TRACESTATE),
        }
    }
}

/// Makes `span` continue the trace whose context a message carries in its headers.
pub fn continue_from_amqp(span: &Span, headers: Option<&FieldTable>) {
    TraceHeaders::from_amqp(headers).continue_in(span);
}

/// The server span of one HTTP request, continuing the caller's `traceparent` if it sent
/// one; named `METHOD route` as OpenTelemetry's HTTP conventions ask.
pub fn http_server_span<B>(request: &Request<B>) -> Span {
    let method = request.method().as_str();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let span = tracing::info_span!(
        "request",
        otel.name = name,
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        url.path = request.uri().path(),
    );
    if !exporting() {
        let header = |name| Some(request.headers().get(name)?.to_str().ok()?.to_owned());
        TraceHeaders {
            traceparent: header(TRACEPARENT),
            tracestate: header(TRACESTATE),
        }
        .continue_in(&span);
        return span;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    span
}

/// A W3C `traceparent` worth passing on: version `00`, a trace id and a parent id in
/// lowercase hex, neither all zeros, and the flags.
fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && part.bytes().any(|b| b != b'0')
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && parts[3].len() == 2
        && parts[3].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A context a span continues, kept as it came while nothing is exported (see the module
/// doc); lives in the span's extensions.
#[derive(Debug, Clone)]
struct Carried(TraceHeaders);

impl Carried {
    /// Keeps this context with `span` (nothing happens to a disabled span).
    fn attach(self, span: &Span) {
        span.with_subscriber(|(id, dispatch)| {
            if let Some(span) = dispatch
                .downcast_ref::<Registry>()
                .and_then(|registry| registry.span(id))
            {
                span.extensions_mut().insert(self);
            }
        });
    }

    /// The context `span` or its nearest ancestor carries.
    fn nearest(span: &Span) -> Option<Self> {
        span.with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            registry
                .span(id)?
                .scope()
                .find_map(|span| span.extensions().get::<Carried>().cloned())
        })
        .flatten()
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::is_traceparent;

    #[test]
    fn only_a_well_formed_traceparent_is_passed_on() {
        assert!(is_traceparent(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        ));
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\nX: y",
        ] {
            assert!(!is_traceparent(bad), "{bad:?}");
        }
    }
}
