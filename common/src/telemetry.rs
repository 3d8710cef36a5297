//! Logging: `RUST_LOG` picks what is written, `LOG_FORMAT` how.
//!
//! Every consumed message runs inside a `message` span carrying `order_id`, `event_type`,
//! `message_id` and `causation_id`. In the pretty format the span prefixes the line; in
//! JSON the span's fields are written as top-level fields of every line inside it, beside
//! `service`, so `jq 'select(.order_id == "…")'` follows one order across all services,
//! and a line written inside a traced span carries its `trace_id` (see [`crate::trace`]).

use crate::config::{CommonConfig, LogFormat};
use crate::trace::Tracing;
use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber: logs as `LOG_FORMAT` says, and spans with their
/// OpenTelemetry identity (exported when `OTEL_EXPORTER_OTLP_ENDPOINT` is set). Keep the
/// returned [`Tracing`] until the process ends: dropping it flushes the spans. A second
/// call (several services in one test process) keeps the first subscriber.
pub fn init(config: &CommonConfig) -> Tracing {
    let filter = LogsAndTracedSpans {
        logs: EnvFilter::try_new(quiet_notices(&config.log_filter))
            .unwrap_or_else(|_| EnvFilter::new("info")),
        own_crate: config.service.crate_name,
    };
    let tracing = Tracing::new(config.otel_endpoint.as_deref(), &config.otel_service_name);
    let otel = tracing.layer(config.service.name);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let _ = match config.log_format {
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_target(false))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(JsonFields::new())
                    .event_format(FlatJson {
                        service: config.service.name,
                    }),
            )
            .try_init(),
    };
    tracing
}

/// The process's one filter: `RUST_LOG` (an [`EnvFilter`]) decides the log lines, but the
/// spans a trace is made of ([`crate::trace::is_traced_span`]) are always on, so a quiet log
/// (`RUST_LOG=warn`) does not break the trace. One global filter rather than a filter per
/// layer: per-layer filters lose an event whose field values log themselves (lapin does).
struct LogsAndTracedSpans {
    logs: EnvFilter,
    /// The service's crate, whose spans are part of the trace (with `common`'s).
    own_crate: &'static str,
}

impl<S> Layer<S> for LogsAndTracedSpans
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if crate::trace::is_traced_span(metadata, self.own_crate) {
            Interest::always()
        } else {
            Layer::<S>::register_callsite(&self.logs, metadata)
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        crate::trace::is_traced_span(metadata, self.own_crate)
            || Layer::enabled(&self.logs, metadata, ctx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Layer::<S>::max_level_hint(&self.logs).map(|level| level.max(LevelFilter::INFO))
    }

    // The rest is the `EnvFilter`'s own bookkeeping for span-scoped directives.
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.logs.on_new_span(attrs, id, ctx)
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.logs.on_record(id, values, ctx)
    }
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.logs.on_enter(id, ctx)
    }
    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.logs.on_exit(id, ctx)
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.logs.on_close(id, ctx)
    }
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

/// One JSON object per line: time, level, service, the fields of every enclosing span
/// (inner ones win), then the event's own fields.
struct FlatJson {
    service: &'static str,
}

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), metadata.level().as_str().into());
        line.insert("service".into(), self.service.into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    // The OpenTelemetry attributes (`otel.*`, `messaging.*`, `db.*`, …) are for
                    // the trace, not for every log line.
                    line.extend(fields.into_iter().filter(|(name, _)| is_log_field(name)));
                }
            }
        }
        if let Some(trace_id) = crate::trace::current_trace_id() {
            line.insert("trace_id".into(), trace_id.into());
        }
        event.record(&mut JsonVisitor(&mut line));
        line.insert("target".into(), metadata.target().into());
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Whether a span field belongs in log lines (the trace-only attributes do not).
fn is_log_field(name: &str) -> bool {
    !["otel.", "messaging.", "http.", "url.", "db."]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Collects an event's fields into a JSON object.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}
