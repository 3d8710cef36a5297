//! The payload of each event, and the value types they share.

use crate::money::Money;
use crate::order_id::OrderId;
use crate::quantity::Quantity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One line of an order: a product and how many of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
pub struct LineItem {
    #[schema(example = "product-A")]
    pub product_id: String,
    #[schema(value_type = i64, minimum = 1, maximum = 10000, example = 2)]
    pub quantity: Quantity,
}

/// A product inventory could not supply, with what was asked and what was there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnavailableItem {
    pub product_id: String,
    pub requested: u32,
    pub available: u32,
}

/// Why an order ended `CANCELLED`: the saga ended it (stock, payment, timeout), or a
/// customer or an operator (`orders:admin` or the admin token) cancelled it (CONTRACT §15).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancellationReason {
    InventoryUnavailable,
    PaymentFailed,
    Timeout,
    CustomerCancelled,
    OperatorCancelled,
}

impl CancellationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InventoryUnavailable => "INVENTORY_UNAVAILABLE",
            Self::PaymentFailed => "PAYMENT_FAILED",
            Self::Timeout => "TIMEOUT",
            Self::CustomerCancelled => "CUSTOMER_CANCELLED",
            Self::OperatorCancelled => "OPERATOR_CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::InventoryUnavailable,
            Self::PaymentFailed,
            Self::Timeout,
            Self::CustomerCancelled,
            Self::OperatorCancelled,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == text)
    }

    /// Whether someone asked for it (customer or operator), rather than the saga ending by itself.
    pub fn requested(self) -> bool {
        matches!(self, Self::CustomerCancelled | Self::OperatorCancelled)
    }
}

/// A customer placed an order; order-service saved it `PENDING`. Starts the saga.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCreated {
    pub order_id: OrderId,
    pub customer_id: String,
    pub items: Vec<LineItem>,
    pub total_amount: Money,
}

/// Every item of the order is reserved, in one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryReserved {
    pub order_id: OrderId,
    pub customer_id: String,
    pub items: Vec<LineItem>,
    pub total_amount: Money,
}

/// Some item is short or unknown; nothing was reserved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryUnavailable {
    pub order_id: OrderId,
    pub reason: String,
    pub items: Vec<UnavailableItem>,
}

/// The order's amount was charged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentProcessed {
    pub order_id: OrderId,
    pub payment_id: Uuid,
    pub amount: Money,
    pub attempts: u32,
}

/// Every payment attempt was declined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentFailed {
    pub order_id: OrderId,
    pub amount: Money,
    pub reason: String,
    pub attempts: u32,
}

/// The order ended `COMPLETED`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderConfirmed {
    pub order_id: OrderId,
    pub customer_id: String,
    pub total_amount: Money,
}

/// The order ended `CANCELLED`; what it reserved is to be released, what it was charged refunded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelled {
    pub order_id: OrderId,
    pub customer_id: String,
    pub reason: CancellationReason,
    pub items: Vec<LineItem>,
}

/// Stock an order held is available again (its order was cancelled, whatever the reason).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryReleased {
    pub order_id: OrderId,
    /// What was released, one line per product.
    pub items: Vec<LineItem>,
}

/// A payment of an order that ended `CANCELLED` was refunded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentRefunded {
    pub order_id: OrderId,
    pub payment_id: Uuid,
    pub amount: Money,
}
