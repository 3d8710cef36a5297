//! Retry queue names and the arguments RabbitMQ compares on every redeclaration.

use super::*;

/// A layout of one consumer, as a published language would hand it in.
fn layout() -> Layout {
    Layout {
        consumers: vec![ConsumerQueue {
            owner: "a-service",
            name: "orders.a".into(),
            dead_letters: "orders.a.dlq".into(),
            bindings: &["thing.happened"],
        }],
        copies: vec![],
    }
}

#[test]
fn a_queue_is_found_by_its_owner_and_its_retry_queues_derive_from_its_name() {
    let topology = Topology {
        exchange: "orders".into(),
        retry_delays: vec![Duration::from_secs(1)],
        queue_type: QueueType::Classic,
        layout: layout(),
    };
    let queue = topology.consumer("a-service").unwrap();
    assert_eq!(queue.name, "orders.a");
    assert!(topology.consumer("b-service").is_none());
    assert_eq!(
        topology.retry_queue(queue, Duration::from_secs(1)),
        "orders.a.retry.1000ms"
    );
}

/// What RabbitMQ compares on every redeclaration: a classic deployment must keep
/// exactly the arguments it always had, or its services could not start.
#[test]
fn classic_queues_keep_their_arguments_and_quorum_ones_replicate() {
    let mut topology = Topology {
        exchange: "orders".into(),
        retry_delays: vec![Duration::from_secs(1)],
        queue_type: QueueType::Classic,
        layout: layout(),
    };
    let own = layout().consumers.remove(0);
    let second = Duration::from_secs(1);
    assert!(topology.queue_arguments(&own).inner().is_empty());
    assert!(topology.dead_letter_queue_arguments().inner().is_empty());
    let keys = |table: FieldTable| {
        table
            .inner()
            .keys()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(topology.retry_queue_arguments(&own, second)),
        [
            "x-dead-letter-exchange",
            "x-dead-letter-routing-key",
            "x-message-ttl"
        ]
    );

    topology.queue_type = QueueType::Quorum;
    let queue = topology.queue_arguments(&own);
    assert_eq!(
        queue.inner().get("x-queue-type"),
        Some(&AMQPValue::LongString("quorum".into()))
    );
    assert_eq!(
        queue.inner().get("x-dead-letter-routing-key"),
        Some(&AMQPValue::LongString("orders.a.dlq".into()))
    );
    assert_eq!(
        queue.inner().get("x-delivery-limit"),
        Some(&AMQPValue::LongLongInt(DELIVERY_LIMIT))
    );
    assert_eq!(
        keys(topology.dead_letter_queue_arguments()),
        ["x-queue-type"],
        "a delivery limit on a dead-letter queue would drop what operators peek at"
    );
    let retry = topology.retry_queue_arguments(&own, second);
    assert_eq!(
        retry.inner().get("x-dead-letter-strategy"),
        Some(&AMQPValue::LongString("at-least-once".into()))
    );
    assert_eq!(
        retry.inner().get("x-dead-letter-routing-key"),
        Some(&AMQPValue::LongString("orders.a".into()))
    );
}

#[test]
fn queue_types_parse() {
    assert_eq!("quorum".parse(), Ok(QueueType::Quorum));
    assert_eq!("Classic".parse(), Ok(QueueType::Classic));
    assert!("mirrored".parse::<QueueType>().is_err());
}
