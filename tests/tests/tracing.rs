//! Distributed tracing (CONTRACT §10): one order's saga is one trace across all four
//! services, continuing the `traceparent` its POST came with, exported over OTLP/HTTP.

use lapin::types::AMQPValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use reqwest::StatusCode;
use saga_tests::api::order_body;
use saga_tests::otlp::{OtlpReceiver, ReceivedSpan};
use saga_tests::{Service, TestStack, eventually};
use serde_json::Value;
use std::time::Duration;

const SERVICES: [&str; 4] = [
    "order-service",
    "inventory-service",
    "payment-service",
    "notification-service",
];

fn of<'a>(spans: &'a [ReceivedSpan], service: &str, kind: SpanKind) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|span| span.service == service && span.kind == kind)
        .collect()
}

/// Places an order with a caller's `traceparent`; its id.
/// Some JSON log line of inventory-service about order `id` carries `trace_id`.
fn assert_inventory_logged_in(stack: &TestStack, trace_id: &str, id: &str) {
    let logs = stack.logs(Service::Inventory);
    assert!(
        logs.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .any(|line| line["trace_id"] == trace_id && line["order_id"] == id),
        "no inventory log line with trace_id {trace_id}"
    );
}

async fn post_traced(stack: &TestStack, traceparent: &str) -> String {
    let response = stack
        .http
        .post(stack.url(Service::Order, "/api/orders"))
        .header("traceparent", traceparent)
        .json(&order_body("customer-traced", &[("product-A", 1)], 20.0))
        .send()
        .await
        .expect("order-service answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.expect("the order");
    order["id"].as_str().expect("an id").to_owned()
}

/// A stack whose every payment succeeds, exporting its spans to `receiver` at once, with
/// `rust_log` as its log filter.
async fn exporting_to(receiver: &OtlpReceiver, rust_log: &str) -> TestStack {
    TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("RUST_LOG", rust_log)
        .start()
        .await
}

#[tokio::test]
async fn one_order_is_one_trace_across_four_services_continuing_the_callers_traceparent() {
    let receiver = OtlpReceiver::start().await;
    // Logs quiet where the spans are made: the log filter must not decide what is traced.
    let stack = exporting_to(&receiver, "info,common::consumer=warn,common::trace=warn").await;

    // The caller's own trace: its span is the parent of order-service's server span.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let id = &*post_traced(&stack, &format!("00-{trace_id}-{caller_span}-01")).await;
    assert_eq!(stack.final_order(id).await["status"], "COMPLETED");

    let spans = eventually(
        "every service's spans of the trace",
        Duration::from_secs(30),
        || async {
            let spans = receiver.trace(trace_id);
            let consumers_everywhere = SERVICES[1..]
                .iter()
                .all(|service| !of(&spans, service, SpanKind::Consumer).is_empty());
            // order-service consumes PaymentProcessed; notification two events.
            let enough = !of(&spans, "order-service", SpanKind::Consumer).is_empty()
                && of(&spans, "notification-service", SpanKind::Consumer).len() >= 2;
            // Every consumer span is the child of a producer span of the same trace, from
            // another process or its own (order-service consumes what payment produced).
            // Each process exports on its own schedule, so a consumer's span may arrive
            // before its parent does: wait for the parents too.
            let orphans: Vec<&ReceivedSpan> = spans
                .iter()
                .filter(|span| span.kind == SpanKind::Consumer)
                .filter(|consumer| {
                    !spans.iter().any(|span| {
                        span.kind == SpanKind::Producer && span.span_id == consumer.parent_span_id
                    })
                })
                .collect();
            if consumers_everywhere && enough && orphans.is_empty() {
                Ok(spans)
            } else {
                Err(format!(
                    "consumer spans without their producer parent: {orphans:#?}\nall: {spans:#?}"
                ))
            }
        },
    )
    .await;

    let server = of(&spans, "order-service", SpanKind::Server);
    let post = server
        .iter()
        .find(|span| span.name == "POST /api/orders")
        .unwrap_or_else(|| panic!("no POST span: {spans:#?}"));
    assert_eq!(post.parent_span_id, caller_span, "{post:?}");

    let producers: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.kind == SpanKind::Producer)
        .collect();
    for consumer in spans.iter().filter(|span| span.kind == SpanKind::Consumer) {
        assert!(
            consumer.name.ends_with(" process"),
            "a consumer span named {:?}",
            consumer.name
        );
    }
    // Every event of the saga, including the one payment's worker publishes after the
    // provider answered, outside any consumer.
    for event in [
        "order.created",
        "inventory.reserved",
        "payment.processed",
        "order.confirmed",
    ] {
        assert!(
            producers
                .iter()
                .any(|p| p.name == format!("{event} publish")),
            "no {event} producer in {producers:#?}"
        );
    }
    assert!(
        spans
            .iter()
            .any(|span| span.name == "postgresql transaction"),
        "no database transaction span"
    );
    let services: std::collections::BTreeSet<&str> =
        spans.iter().map(|span| span.service.as_str()).collect();
    assert_eq!(services, SERVICES.into_iter().collect());

    // JSON log lines written inside the trace carry its id.
    assert_inventory_logged_in(&stack, trace_id, id);

    stack.assert_invariants().await;
    stack.cleanup().await;
}

/// At `debug`, the handlers' and repositories' spans join the trace (issue 32.5): it shows
/// each service's database steps under the consumer span of the message that caused them.
#[tokio::test]
async fn at_debug_the_trace_shows_the_database_steps_of_the_saga() {
    let receiver = OtlpReceiver::start().await;
    let stack = exporting_to(
        &receiver,
        "info,order_service=debug,inventory_service=debug,payment_service=debug",
    )
    .await;
    let trace_id = "5cf92f3577b34da6a3ce929d0e0e4737";
    let id = &*post_traced(&stack, &format!("00-{trace_id}-10f067aa0ba902b8-01")).await;
    assert_eq!(stack.final_order(id).await["status"], "COMPLETED");

    // A step of each consuming service, named after its function. (The intake's insert is
    // not among them: it writes a batch of requests, outside any one request's trace.)
    let steps = [
        ("inventory-service", "reserve"),
        ("payment-service", "charge_first_attempt"),
        ("order-service", "end"),
        ("order-service", "finish"),
    ];
    let spans = eventually(
        "the saga's database steps",
        Duration::from_secs(30),
        || async {
            let spans = receiver.trace(trace_id);
            let missing: Vec<_> = steps
                .iter()
                .filter(|(service, name)| {
                    !spans
                        .iter()
                        .any(|span| span.service == *service && span.name == *name)
                })
                .collect();
            if missing.is_empty() {
                Ok(spans)
            } else {
                Err(format!("no span for {missing:?} in {spans:#?}"))
            }
        },
    )
    .await;
    // inventory's reservation runs in its handler, inside the consumer span.
    let parent = |child: &ReceivedSpan| {
        spans
            .iter()
            .find(|span| span.span_id == child.parent_span_id)
            .unwrap_or_else(|| panic!("no parent of {child:?} in {spans:#?}"))
    };
    let reserve = spans.iter().find(|span| span.name == "reserve").unwrap();
    let handler = parent(reserve);
    assert_eq!(handler.name, "handle", "{spans:#?}");
    assert_eq!(parent(handler).kind, SpanKind::Consumer, "{spans:#?}");
    let finish = spans.iter().find(|span| span.name == "finish").unwrap();
    assert_eq!(parent(finish).name, "end", "{spans:#?}");
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported_but_the_context_still_travels() {
    let receiver = OtlpReceiver::start().await;
    let stack = TestStack::builder()
        // Logs quiet where the spans are made: the context must travel all the same.
        .env("RUST_LOG", "info,common::consumer=warn,common::trace=warn")
        .start()
        .await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let callers = format!("00-{trace_id}-b7ad6b7169203331-01");
    let id = &*post_traced(&stack, &callers).await;
    stack.final_order(id).await;

    // Every event of the order carries a traceparent of the caller's trace.
    let events = eventually(
        "the order's four events",
        Duration::from_secs(20),
        || async {
            let events: Vec<_> = stack
                .broker
                .deliveries()
                .await
                .into_iter()
                .filter(|event| event.order_id() == id)
                .collect();
            if events.len() >= 4 {
                Ok(events)
            } else {
                Err(format!("{} events", events.len()))
            }
        },
    )
    .await;
    for event in &events {
        let headers = event.properties.headers().clone().unwrap_or_default();
        let traceparent = match headers.inner().get("traceparent") {
            Some(AMQPValue::LongString(text)) => text.to_string(),
            other => format!("{other:?}"),
        };
        // Nothing in between is exported, so the caller's context is passed on unchanged.
        assert_eq!(
            traceparent,
            callers,
            "{} has traceparent {traceparent:?}",
            event.event_type()
        );
    }
    // Log lines written inside the trace still carry its id.
    assert_inventory_logged_in(&stack, trace_id, id);
    assert!(receiver.spans().is_empty());
    stack.assert_invariants().await;
    stack.cleanup().await;
}
