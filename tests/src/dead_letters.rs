//! Dead letters made on purpose, for the operator's console tests (CONTRACT §16): many of
//! one cause put straight into a dead-letter queue, or a poison copy of a real order's
//! `OrderCreated` that a client bug could have sent.

use crate::broker::connect_any;
use crate::{Service, TestStack, eventually};
use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::Value;
use std::time::Duration;

/// One dead letter to make: its message id, AMQP type, body and error.
pub type Letter<'a> = (String, Option<&'a str>, Value, String);

/// `service`'s dead-letter queue on the stack's exchange.
pub fn dead_letter_queue(stack: &TestStack, service: Service) -> String {
    ::contract::queues::consumer_queue(&stack.topology.exchange, service).dead_letters
}

/// Puts dead letters straight into `service`'s dead-letter queue, as the consumer writes
/// them (`x-error`, `x-attempts`, failure times), confirms awaited together: a quick way to
/// many letters of one cause.
pub async fn dead_letter_directly(stack: &TestStack, service: Service, letters: &[Letter<'_>]) {
    let connection = connect_any(&stack.amqp_url).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let queue = dead_letter_queue(stack, service);
    let now = chrono::Utc::now().to_rfc3339();
    let mut confirms = Vec::new();
    for (id, event_type, body, error) in letters {
        let mut headers = FieldTable::default();
        headers.insert(
            "x-error".into(),
            AMQPValue::LongString(error.as_str().into()),
        );
        headers.insert("x-attempts".into(), AMQPValue::LongUInt(1));
        headers.insert(
            "x-failed-at".into(),
            AMQPValue::LongString(now.as_str().into()),
        );
        headers.insert(
            "x-first-failed-at".into(),
            AMQPValue::LongString(now.as_str().into()),
        );
        headers.insert(
            "x-original-routing-key".into(),
            AMQPValue::LongString("order.created".into()),
        );
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(id.as_str().into())
            .with_headers(headers);
        if let Some(kind) = event_type {
            properties = properties.with_type((*kind).into());
        }
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &serde_json::to_vec(body).unwrap(),
                properties,
            )
            .await
            .unwrap();
        confirms.push(confirm);
    }
    for confirm in confirms {
        assert!(confirm.await.unwrap().is_ack());
    }
    let _ = connection.close(200, "done".into()).await;
}

/// Takes the OrderCreated of `order_id` off inventory-service's queue (the service is
/// stopped) and puts a copy with `body` in its place: same id, same properties.
pub async fn corrupt_order_created(stack: &TestStack, body: &Value) -> (String, Value) {
    let connection = connect_any(&stack.amqp_url).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let queue =
        ::contract::queues::consumer_queue(&stack.topology.exchange, Service::Inventory).name;
    let message = eventually(
        "the OrderCreated to wait",
        Duration::from_secs(30),
        || async {
            channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "not yet".to_owned())
        },
    )
    .await;
    let delivery = message.delivery;
    let original: Value = serde_json::from_slice(&delivery.data).unwrap();
    let mut corrupted = original.clone();
    for (name, value) in body.as_object().unwrap() {
        corrupted[name] = value.clone();
    }
    stack
        .broker
        .publish(
            "order.created",
            &serde_json::to_vec(&corrupted).unwrap(),
            delivery.properties.clone(),
        )
        .await;
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    let _ = connection.close(200, "done".into()).await;
    (original["event_id"].as_str().unwrap().to_owned(), original)
}

/// Restarts order-service pointed at inventory-service's current address: its
/// `INVENTORY_URL` names the instance it started with, and the operator log it serves
/// includes inventory-service's, read over HTTP.
pub async fn restart_order_service(stack: &mut TestStack) {
    stack.kill(Service::Order).await;
    let inventory = stack.url(Service::Inventory, "");
    stack
        .add_replica_with_env(Service::Order, &[("INVENTORY_URL", inventory.as_str())])
        .await;
}
