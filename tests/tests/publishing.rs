//! What a publish must not lose: a message no queue takes counts as a failed publish (it
//! stays in the outbox while the service declares its topology again), and a message that
//! went through the delay queues reaches the dead-letter queue with the routing key it was
//! first published with.

use lapin::options::{BasicGetOptions, QueueBindOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use saga_tests::stack::amqp_url;
use saga_tests::{Service, TestStack, contract, eventually};
use std::time::Duration;

async fn channel() -> (Connection, Channel) {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("RabbitMQ is reachable");
    let channel = connection.create_channel().await.expect("a channel");
    (connection, channel)
}

/// Orders placed before the fault, while it lasts, and after it.
const EACH_PHASE: usize = 4;

/// A consumer's binding deleted while orders keep coming (issue 21): with no other queue
/// bound to the event (the test's tap, bound to every key, is unbound too, as a deployment
/// has no such queue), its publish comes back unrouted and the event stays in the outbox;
/// the service declares its topology again at once and the event goes out. No order is
/// lost, none waits for its saga timeout.
#[tokio::test]
async fn a_binding_deleted_mid_run_loses_no_event() {
    let mut stack = TestStack::start().await;
    stack.set_stock("product-A", 100).await;
    let (connection, channel) = channel().await;
    let exchange = stack.name.clone();
    let inventory = contract::queue(&exchange, Service::Inventory);
    let tap = format!("{exchange}.tap");
    let mut ids = Vec::new();
    for _ in 0..EACH_PHASE {
        ids.push(place(&stack).await);
    }

    for (queue, key) in [(&inventory, "order.created"), (&tap, "#")] {
        channel
            .queue_unbind(
                queue.as_str().into(),
                exchange.as_str().into(),
                key.into(),
                FieldTable::default(),
            )
            .await
            .expect("the binding can be removed");
    }
    // The strike hits work in flight: the next OrderCreated has nowhere to go.
    ids.push(place(&stack).await);
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
    for _ in 1..EACH_PHASE {
        ids.push(place(&stack).await);
    }
    // The tap is the test's own: the service does not declare it, so it comes back by hand.
    channel
        .queue_bind(
            tap.as_str().into(),
            exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("the tap's binding can be restored");
    for _ in 0..EACH_PHASE {
        ids.push(place(&stack).await);
    }

    for id in &ids {
        assert_eq!(stack.final_order(id).await["status"], "COMPLETED", "{id}");
    }
    let _ = connection.close(200, "done".into()).await;
    stack.assert_invariants().await;
    stack.cleanup().await;
}

async fn place(stack: &TestStack) -> String {
    let order = stack.place_order("c", &[("product-A", 1)], 3.0).await;
    order["id"].as_str().unwrap().to_owned()
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
    let dead_letters = contract::dead_letter_queue(&stack.name, Service::Notification);
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
