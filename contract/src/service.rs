//! The four services of the saga by name. The names are part of the wire contract: queue
//! names, the AMQP `app_id`, who publishes each event (CONTRACT §4).

/// The four services of the saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Order,
    Inventory,
    Payment,
    Notification,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Order,
        Service::Inventory,
        Service::Payment,
        Service::Notification,
    ];

    /// `order`, `inventory`, …: in queue and database names.
    pub const fn short_name(self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Inventory => "inventory",
            Self::Payment => "payment",
            Self::Notification => "notification",
        }
    }

    /// `order-service`, …: the binary, the AMQP `app_id`, the log `service` field.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Order => "order-service",
            Self::Inventory => "inventory-service",
            Self::Payment => "payment-service",
            Self::Notification => "notification-service",
        }
    }

    /// The service of a name (`order-service`), if it is one of the four.
    pub fn named(name: &str) -> Option<Service> {
        Self::ALL.into_iter().find(|service| service.name() == name)
    }
}
