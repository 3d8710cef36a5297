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

mod carried;
mod export;

pub use export::Tracing;

use axum::extract::MatchedPath;
use axum::http::{HeaderMap, Request};
use carried::{Carried, is_traceparent};
use export::exporting;
use lapin::types::{AMQPValue, FieldTable};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

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

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}
