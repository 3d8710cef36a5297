//! One message, one confirm: every publisher of a process shares the link's channel, on a
//! multi-threaded runtime, so a confirm must never be credited to another task's message.
//! Many tasks publish at once through one `ConfirmChannel` to two queues — one takes
//! everything, one refuses everything (`x-max-length: 0`, `x-overflow: reject-publish`,
//! so RabbitMQ answers each publish with a negative confirm) — and each task must get the
//! answer of its own queue, every time.

use common::amqp::publish::{ConfirmChannel, Message, PublishError};
use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use saga_tests::stack::amqp_url;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::task::JoinSet;

const TASKS: usize = 64;
const EACH: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_publisher_gets_the_answer_of_its_own_message() {
    let connection = Arc::new(
        Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .expect("RabbitMQ is reachable"),
    );
    let setup = connection.create_channel().await.unwrap();
    let prefix = format!("confirms-{}", uuid::Uuid::new_v4().simple());
    let accepting = format!("{prefix}.accepting");
    let refusing = format!("{prefix}.refusing");
    let mut full = FieldTable::default();
    full.insert("x-max-length".into(), AMQPValue::LongLongInt(0));
    full.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    for (queue, arguments) in [(&accepting, FieldTable::default()), (&refusing, full)] {
        setup
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::default(),
                arguments,
            )
            .await
            .expect("the test's queues");
    }
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let publisher = Arc::new(ConfirmChannel::new(
        connection.clone(),
        channel,
        Arc::new(Notify::new()),
    ));

    let mut tasks = JoinSet::new();
    for task in 0..TASKS {
        let (publisher, accepting, refusing) =
            (publisher.clone(), accepting.clone(), refusing.clone());
        tasks.spawn(async move {
            let mut mismatches = Vec::new();
            for i in 0..EACH {
                let refused = (task + i) % 2 == 0;
                let queue = if refused { &refusing } else { &accepting };
                let body = format!("{task}-{i}");
                let message = Message {
                    exchange: "",
                    routing_key: queue,
                    payload: body.as_bytes(),
                    properties: BasicProperties::default(),
                };
                let answer = publisher.publish(&[message]).await;
                match (refused, &answer) {
                    (false, Ok(())) | (true, Err(PublishError::Nacked)) => {}
                    _ => mismatches.push(format!("{body} to {queue}: {answer:?}")),
                }
            }
            mismatches
        });
    }
    let mut mismatches = Vec::new();
    while let Some(done) = tasks.join_next().await {
        mismatches.extend(done.expect("a publishing task"));
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} publishes got another message's answer, e.g. {:?}",
        mismatches.len(),
        TASKS * EACH,
        &mismatches[..mismatches.len().min(5)]
    );

    let taken = setup
        .queue_declare(
            accepting.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count();
    assert_eq!(
        taken as usize,
        TASKS * EACH / 2,
        "every accepted message is in its queue"
    );
    for queue in [&accepting, &refusing] {
        let _ = setup
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
}
