//! Queue names and the arguments RabbitMQ compares on every redeclaration.

use super::*;

#[test]
fn names_derive_from_the_exchange() {
    let topology = Topology {
        exchange: "orders".into(),
        retry_delays: vec![Duration::from_secs(1)],
        queue_type: QueueType::Classic,
    };
    assert_eq!(topology.queue(Service::Inventory), "orders.inventory");
    assert_eq!(
        topology.dead_letter_queue(Service::Payment),
        "orders.payment.dlq"
    );
    assert_eq!(
        topology.retry_queue(Service::Order, Duration::from_secs(1)),
        "orders.order.retry.1000ms"
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
    };
    let second = Duration::from_secs(1);
    assert!(topology.queue_arguments(Service::Order).inner().is_empty());
    assert!(topology.dead_letter_queue_arguments().inner().is_empty());
    let keys = |table: FieldTable| {
        table
            .inner()
            .keys()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(topology.retry_queue_arguments(Service::Order, second)),
        [
            "x-dead-letter-exchange",
            "x-dead-letter-routing-key",
            "x-message-ttl"
        ]
    );

    topology.queue_type = QueueType::Quorum;
    let queue = topology.queue_arguments(Service::Order);
    assert_eq!(
        queue.inner().get("x-queue-type"),
        Some(&AMQPValue::LongString("quorum".into()))
    );
    assert_eq!(
        queue.inner().get("x-dead-letter-routing-key"),
        Some(&AMQPValue::LongString("orders.order.dlq".into()))
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
    let retry = topology.retry_queue_arguments(Service::Order, second);
    assert_eq!(
        retry.inner().get("x-dead-letter-strategy"),
        Some(&AMQPValue::LongString("at-least-once".into()))
    );
    assert_eq!(
        retry.inner().get("x-dead-letter-routing-key"),
        Some(&AMQPValue::LongString("orders.order".into()))
    );
}

#[test]
fn queue_types_parse() {
    assert_eq!("quorum".parse(), Ok(QueueType::Quorum));
    assert_eq!("Classic".parse(), Ok(QueueType::Classic));
    assert!("mirrored".parse::<QueueType>().is_err());
}
