//! What a publish must not lose: a message no queue takes counts as a failed publish (it
//! stays in the outbox until a queue takes it), and a message that went through the delay
//! queues reaches the dead-letter queue with the routing key it was first published with.

use lapin::options::{BasicGetOptions, QueueBindOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use saga_tests::stack::amqp_url;
use saga_tests::{Service, TestStack, eventually};
use std::time::Duration;

async fn channel() -> (Connection, Channel) {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("RabbitMQ is reachable");
    let channel = connection.create_channel().await.expect("a channel");
    (connection, channel)
}

/// The queues `routing_key` reaches on the stack's exchange: the service's own, the
/// saga audit's, and the test's tap.
fn bindings(
    stack: &TestStack,
    service: Service,
    routing_key: &'static str,
) -> [(String, &'static str); 3] {
    [
        (stack.topology.queue(service), routing_key),
        (format!("{}.audit", stack.topology.exchange), "#"),
        (format!("{}.tap", stack.topology.exchange), "#"),
    ]
}

#[tokio::test]
async fn an_event_no_queue_takes_stays_in_the_outbox_until_its_binding_is_back() {
    let stack = TestStack::start().await;
    let (connection, channel) = channel().await;
    let exchange = stack.topology.exchange.as_str();
    let routes = bindings(&stack, Service::Inventory, "order.created");
    for (queue, key) in &routes {
        channel
            .queue_unbind(
                queue.as_str().into(),
                exchange.into(),
                (*key).into(),
                FieldTable::default(),
            )
            .await
            .expect("the binding can be removed");
    }

    let order = stack.place_order("c", &[("product-A", 1)], 3.0).await;
    let id = order["id"].as_str().unwrap();
    eventually(
        "order-service to see its OrderCreated returned",
        Duration::from_secs(30),
        || async {
            if stack
                .logs(Service::Order)
                .contains("no queue takes messages routed")
            {
                Ok(())
            } else {
                Err("no return logged".to_owned())
            }
        },
    )
    .await;
    assert_eq!(
        stack.outbox_backlog(Service::Order).await,
        1,
        "the unroutable OrderCreated is kept"
    );
    assert_eq!(stack.order(id).await["status"], "PENDING");
    let (status, ready) = stack.get_json(Service::Order, "/ready").await;
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert!(
        ready["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("no queue takes")),
        "{ready}"
    );

    for (queue, key) in &routes {
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.into(),
                (*key).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("the binding can be restored");
    }
    assert_eq!(stack.final_order(id).await["status"], "COMPLETED");
    let _ = connection.close(200, "done".into()).await;
    stack.assert_invariants().await;
    stack.cleanup().await;
}

#[tokio::test]
async fn a_message_dead_lettered_after_its_retries_keeps_its_original_routing_key() {
    let mut stack = TestStack::start().await;
    stack
        .refuse_inserts(Service::Notification, "notifications")
        .await;

    // An event only notification-service takes, for an order nobody else knows.
    let event_id = stack
        .broker
        .publish_event(
            "OrderConfirmed",
            serde_json::json!({
                "order_id": uuid::Uuid::now_v7().to_string(),
                "customer_id": "c",
                "total_amount": 3.0,
            }),
        )
        .await;
    let dead_letters = stack.topology.dead_letter_queue(Service::Notification);
    eventually(
        "the event to be dead-lettered after its retries",
        Duration::from_secs(30),
        || async {
            match stack.broker.depth(&dead_letters).await {
                1 => Ok(()),
                depth => Err(format!("depth {depth}")),
            }
        },
    )
    .await;

    let (connection, channel) = channel().await;
    let letter = channel
        .basic_get(
            dead_letters.as_str().into(),
            BasicGetOptions { no_ack: false },
        )
        .await
        .expect("the dead-letter queue can be read")
        .expect("one dead letter");
    let headers = letter
        .delivery
        .properties
        .headers()
        .clone()
        .unwrap_or_default();
    let header = |name: &str| headers.inner().get(name).cloned();
    assert_eq!(
        letter
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string()),
        Some(event_id.clone())
    );
    assert_eq!(header("x-attempts"), Some(AMQPValue::LongUInt(4)));
    assert_eq!(
        header("x-original-routing-key"),
        Some(AMQPValue::LongString("order.confirmed".into())),
    );
    // Closing the channel puts the unacknowledged letter back.
    let _ = channel.close(200, "read".into()).await;
    let _ = connection.close(200, "done".into()).await;

    stack
        .expected_dead_letters
        .insert(Service::Notification, vec![event_id.clone()]);
    stack.assert_invariants().await;
    stack.cleanup().await;
}
