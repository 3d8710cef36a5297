//! CONTRACT §4 spelled out as literal strings: queue names, routing keys, event names,
//! publishers and header names. The tests use these, never the services' own constants in
//! the `contract` crate, so a rename in the code cannot silently move the contract.

use ::contract::Service;

/// `<exchange>.<service>`: the durable queue a service consumes from.
pub fn queue(exchange: &str, service: Service) -> String {
    format!("{exchange}.{}", queue_part(service))
}

/// `<exchange>.<service>.dlq`: where a message that cannot be handled ends.
pub fn dead_letter_queue(exchange: &str, service: Service) -> String {
    format!("{exchange}.{}.dlq", queue_part(service))
}

/// The `<service>` part of the queue names, as §4 spells it (`orders.inventory`).
fn queue_part(service: Service) -> &'static str {
    match service {
        Service::Order => "order",
        Service::Inventory => "inventory",
        Service::Payment => "payment",
        Service::Notification => "notification",
    }
}

/// The `app_id` of the messages a service publishes.
pub fn app_id(service: Service) -> &'static str {
    match service {
        Service::Order => "order-service",
        Service::Inventory => "inventory-service",
        Service::Payment => "payment-service",
        Service::Notification => "notification-service",
    }
}

/// One row of the table in §4.
pub struct EventSpec {
    pub name: &'static str,
    pub routing_key: &'static str,
    pub publisher: Service,
    /// Fields besides `event_id`, `event_type` and `timestamp`.
    pub fields: &'static [&'static str],
    pub consumers: &'static [Service],
}

/// The table of §4, row by row.
pub const EVENTS: [EventSpec; 9] = [
    EventSpec {
        name: "OrderCreated",
        routing_key: "order.created",
        publisher: Service::Order,
        fields: &["order_id", "customer_id", "items", "total_amount"],
        consumers: &[Service::Inventory],
    },
    EventSpec {
        name: "InventoryReserved",
        routing_key: "inventory.reserved",
        publisher: Service::Inventory,
        fields: &["order_id", "customer_id", "items", "total_amount"],
        consumers: &[Service::Payment],
    },
    EventSpec {
        name: "InventoryUnavailable",
        routing_key: "inventory.unavailable",
        publisher: Service::Inventory,
        fields: &["order_id", "reason", "items"],
        consumers: &[Service::Order],
    },
    EventSpec {
        name: "PaymentProcessed",
        routing_key: "payment.processed",
        publisher: Service::Payment,
        fields: &["order_id", "payment_id", "amount", "attempts"],
        consumers: &[Service::Order, Service::Notification],
    },
    EventSpec {
        name: "PaymentFailed",
        routing_key: "payment.failed",
        publisher: Service::Payment,
        fields: &["order_id", "amount", "reason", "attempts"],
        consumers: &[Service::Order, Service::Notification],
    },
    EventSpec {
        name: "OrderConfirmed",
        routing_key: "order.confirmed",
        publisher: Service::Order,
        fields: &["order_id", "customer_id", "total_amount"],
        consumers: &[Service::Notification],
    },
    EventSpec {
        name: "OrderCancelled",
        routing_key: "order.cancelled",
        publisher: Service::Order,
        fields: &["order_id", "customer_id", "reason", "items"],
        consumers: &[Service::Inventory, Service::Payment, Service::Notification],
    },
    EventSpec {
        name: "PaymentRefunded",
        routing_key: "payment.refunded",
        publisher: Service::Payment,
        fields: &["order_id", "payment_id", "amount"],
        consumers: &[Service::Notification],
    },
    // CONTRACT §15: every return of stock, whatever the cancellation's reason.
    EventSpec {
        name: "InventoryReleased",
        routing_key: "inventory.released",
        publisher: Service::Inventory,
        fields: &["order_id", "items"],
        consumers: &[Service::Order],
    },
];

/// The row of §4 for an event name; panics on a name the contract does not have.
pub fn event(name: &str) -> &'static EventSpec {
    EVENTS
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} is not an event of CONTRACT §4"))
}

/// The row of §4 for a routing key.
pub fn event_by_key(routing_key: &str) -> Option<&'static EventSpec> {
    EVENTS.iter().find(|e| e.routing_key == routing_key)
}

/// Whether `service`'s queue receives messages published with `routing_key`.
pub fn consumes(service: Service, routing_key: &str) -> bool {
    event_by_key(routing_key).is_some_and(|e| e.consumers.contains(&service))
}

/// The AMQP header naming the event that caused this one.
pub const CAUSATION_HEADER: &str = "causation_id";

/// The events that may cause each event (its `causation_id`), by the saga of §5.
pub fn causes(event_type: &str) -> &'static [&'static str] {
    match event_type {
        "InventoryReserved" | "InventoryUnavailable" => &["OrderCreated"],
        "PaymentProcessed" | "PaymentFailed" => &["InventoryReserved"],
        "OrderConfirmed" => &["PaymentProcessed"],
        // A timeout, or a cancellation someone asked for, cancels what the order's
        // OrderCreated started.
        "OrderCancelled" => &["InventoryUnavailable", "PaymentFailed", "OrderCreated"],
        "PaymentRefunded" | "InventoryReleased" => &["OrderCancelled"],
        _ => &[],
    }
}

/// A quorum service queue's `x-delivery-limit`, as README ("Broker cluster") documents it:
/// a message delivered this many times without an ack goes to the dead-letter queue.
pub const QUORUM_DELIVERY_LIMIT: u32 = 20;

/// CONTRACT §13, the circuit breaker on the payment provider: its variables, metrics and
/// `/ready` field, spelt as the contract spells them.
pub mod breaker {
    /// Unknown outcomes in a row that open it.
    pub const FAILURES_VAR: &str = "PAYMENT_BREAKER_FAILURES";
    /// Its first open period, in ms.
    pub const OPEN_MS_VAR: &str = "PAYMENT_BREAKER_OPEN_MS";
    /// 1 while it is open.
    pub const OPEN_GAUGE: &str = "payment_provider_breaker_open";
    /// Counted per state entered, label `to`.
    pub const TRANSITIONS: &str = "payment_provider_breaker_transitions_total";
    /// The field of payment-service's `/ready` body, `"open"` while it is open.
    pub const READY_FIELD: &str = "provider";
}
