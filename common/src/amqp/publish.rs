//! Publishing with publisher confirms: a message counts as sent only once RabbitMQ has
//! written it (persistent, to a durable queue) and said so. Every publish is `mandatory`:
//! a message no queue takes (a binding or queue deleted by hand) comes back as
//! `basic.return` and counts as a failed publish, instead of vanishing.

use super::topology::Service;
use chrono::{DateTime, Utc};
use lapin::PublisherConfirm;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use uuid::Uuid;

/// Delivery mode 2: RabbitMQ writes the message to disk.
const PERSISTENT: u8 = 2;

/// An event ready to go out, as the outbox stores it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutgoingEvent {
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
    pub fn properties(&self, publisher: Service) -> BasicProperties {
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
            .with_app_id(publisher.name().into())
            .with_headers(headers)
    }
}

/// Why a publish did not count.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("RabbitMQ is not connected")]
    NotConnected,
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ refused the message (negative confirm)")]
    Nacked,
    #[error("no queue takes messages routed {routing_key:?} on {exchange:?} ({reply})")]
    Returned {
        exchange: String,
        routing_key: String,
        reply: String,
    },
}

/// Sends one message and returns its pending confirm, so callers can pipeline many
/// publishes and then wait for all the confirms together.
pub async fn send(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<PublisherConfirm, PublishError> {
    Ok(channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            payload,
            properties,
        )
        .await?)
}

/// Waits for every confirm; any negative one, or any message returned unrouted, fails the
/// whole batch.
pub async fn confirmed(
    confirms: impl IntoIterator<Item = PublisherConfirm>,
) -> Result<(), PublishError> {
    let mut failure = None;
    for confirm in confirms {
        let confirmation = confirm.await?;
        let acked = confirmation.is_ack();
        if let Some(returned) = confirmation.take_message() {
            failure.get_or_insert(PublishError::Returned {
                exchange: returned.delivery.exchange.to_string(),
                routing_key: returned.delivery.routing_key.to_string(),
                reply: returned.reply_text.to_string(),
            });
        } else if !acked {
            failure.get_or_insert(PublishError::Nacked);
        }
    }
    failure.map_or(Ok(()), Err)
}
