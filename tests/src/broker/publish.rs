//! Putting messages on the stack's exchange: an event again (a duplicate), an event as
//! its publisher in CONTRACT §4 would send it, or poison no service can handle.

use super::{Tapped, TestBroker};
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use serde_json::Value;

impl TestBroker {
    /// Publishes a message to the stack's exchange and waits for the confirm.
    pub async fn publish(&self, routing_key: &str, body: &[u8], properties: BasicProperties) {
        let confirm = self
            .channel()
            .await
            .basic_publish(
                self.exchange.as_str().into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack(), "RabbitMQ refused the message");
    }

    /// Sends an event again, exactly as it was first published (same `message_id`).
    pub async fn republish(&self, event: &Tapped) {
        self.publish(&event.routing_key, &event.body, event.properties.clone())
            .await;
    }

    /// Publishes an event as its publisher in CONTRACT §4 would: the common fields, then
    /// `fields`; the metadata as AMQP properties. Returns the new event's id.
    pub async fn publish_event(&self, event_type: &str, fields: Value) -> String {
        let spec = crate::contract::event(event_type);
        let event_id = uuid::Uuid::new_v4().to_string();
        let mut body = serde_json::json!({
            "event_id": event_id,
            "event_type": event_type,
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        });
        let order_id = fields["order_id"].as_str().unwrap_or_default().to_owned();
        for (name, value) in fields.as_object().expect("fields are an object") {
            body[name] = value.clone();
        }
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(event_id.as_str().into())
            .with_type(event_type.into())
            .with_correlation_id(order_id.as_str().into())
            .with_app_id(crate::contract::app_id(spec.publisher).into())
            .with_timestamp(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("after 1970")
                    .as_secs(),
            );
        self.publish(
            spec.routing_key,
            &serde_json::to_vec(&body).expect("JSON"),
            properties,
        )
        .await;
        event_id
    }

    /// Publishes a message no service can handle, with a fresh `message_id` so the
    /// invariants can tell it from any other dead letter; returns the id.
    pub async fn publish_poison(&self, routing_key: &str, body: &[u8]) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(id.as_str().into());
        self.publish(routing_key, body, properties).await;
        id
    }
}
