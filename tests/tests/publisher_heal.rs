//! A publisher channel that dies on a live connection heals: the service opens a fresh one,
//! declares its topology again (the exchange and bindings come back), and retries and dead
//! letters go out again — on the same connection, none leaked.

use lapin::options::ExchangeDeleteOptions;
use saga_tests::broker::connect_any;
use saga_tests::{Service, TestStack, contract, eventually};
use std::process::Command;
use std::time::Duration;

/// How many connections RabbitMQ holds for the process `pid` of `service` (the connection
/// name each service gives, CONTRACT §4's `app_id` plus its pid).
fn connections_of(service: Service, pid: u32) -> usize {
    let output = Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "client_properties"])
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        output.status.success(),
        "rabbitmqctl list_connections failed"
    );
    let name = format!("\"{} ({pid})\"", contract::app_id(service));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains(&name))
        .count()
}

#[tokio::test]
async fn a_publisher_channel_killed_by_a_deleted_exchange_heals_and_dead_letters_still_go_out() {
    let mut stack = TestStack::start().await;
    let pid = stack.instances(Service::Order)[0].pid();
    assert_eq!(connections_of(Service::Order, pid), 1);

    // Someone deletes the exchange: order-service's next publish gets a 404, which closes
    // its publisher channel while the connection (and the consumer on it) lives on.
    let connection = connect_any(&stack.amqp_url).await.expect("RabbitMQ");
    let channel = connection.create_channel().await.expect("a channel");
    channel
        .exchange_delete(stack.name.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .expect("the exchange can be deleted");
    let _ = connection.close(200, "done".into()).await;
    let order = stack.place_order("c", &[("product-A", 1)], 3.0).await;

    // The service declared the exchange and bindings again, so the saga still ends.
    let done = stack.final_order(order["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "COMPLETED");

    // A message order-service must dead-letter: its consumer has to publish, which it
    // cannot do on the channel the 404 closed.
    let poison = stack
        .broker
        .publish_poison("inventory.unavailable", b"not json at all")
        .await;
    let dead_letters = contract::dead_letter_queue(&stack.name, Service::Order);
    eventually(
        "the unparseable message in order-service's dead-letter queue",
        Duration::from_secs(30),
        || async {
            match stack.broker.depth(&dead_letters).await {
                1 => Ok(()),
                depth => Err(format!("depth {depth}")),
            }
        },
    )
    .await;
    eventually(
        "order-service to hold one RabbitMQ connection",
        Duration::from_secs(15),
        || async {
            match connections_of(Service::Order, pid) {
                1 => Ok(()),
                n => Err(format!("{n} connections")),
            }
        },
    )
    .await;

    stack
        .expected_dead_letters
        .insert(Service::Order, vec![poison]);
    stack.assert_invariants().await;
    stack.cleanup().await;
}
