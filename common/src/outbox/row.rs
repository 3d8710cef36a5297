//! The outbox's row: an event committed and waiting to go out, and the AMQP properties it
//! goes out with.

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use uuid::Uuid;

/// Delivery mode 2: RabbitMQ writes the message to disk.
const PERSISTENT: u8 = 2;

/// An event ready to go out, as the outbox stores it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct OutgoingEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub routing_key: String,
    pub order_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub payload: Vec<u8>,
    /// The W3C trace context the event was recorded in (CONTRACT §10).
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl OutgoingEvent {
    /// The AMQP properties of CONTRACT §4, so tools can route and trace without parsing.
    /// `app_id` is the publishing service's name.
    pub(crate) fn properties(&self, app_id: &str) -> BasicProperties {
        let mut headers = FieldTable::default();
        if let Some(causation_id) = self.causation_id {
            headers.insert(
                "causation_id".into(),
                AMQPValue::LongString(causation_id.to_string().into()),
            );
        }
        crate::trace::TraceHeaders {
            traceparent: self.traceparent.clone(),
            tracestate: self.tracestate.clone(),
        }
        .write_to(&mut headers);
        BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(PERSISTENT)
            .with_message_id(self.event_id.to_string().into())
            .with_type(self.event_type.as_str().into())
            .with_correlation_id(self.order_id.to_string().into())
            .with_timestamp(self.occurred_at.timestamp().max(0) as u64)
            .with_app_id(app_id.into())
            .with_headers(headers)
    }
}
