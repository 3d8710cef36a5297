//! The payload of each event, and the value types they share.

use crate::money::Money;
use crate::quantity::Quantity;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One line of an order: a product and how many of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LineItem {
    #[schema(example = "product-A")]
    pub product_id: String,
    #[schema(value_type = i64, minimum = 1, maximum = 10000, example = 2)]
    pub quantity: Quantity,
}

/// A product inventory could not supply, with what was asked and what was there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnavailableItem {
    pub product_id: String,
    pub requested: u32,
    pub available: u32,
}

/// Why an order ended `CANCELLED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancellationReason {
    InventoryUnavailable,
    PaymentFailed,
    Timeout,
}

impl CancellationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InventoryUnavailable => "INVENTORY_UNAVAILABLE",
            Self::PaymentFailed => "PAYMENT_FAILED",
            Self::Timeout => "TIMEOUT",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::InventoryUnavailable,
            Self::PaymentFailed,
            Self::Timeout,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: Uuid,
    pub customer_id: String,
    pub items: Vec<LineItem>,
    pub total_amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryReserved {
    pub order_id: Uuid,
    pub customer_id: String,
    pub items: Vec<LineItem>,
    pub total_amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryUnavailable {
    pub order_id: Uuid,
    pub reason: String,
    pub items: Vec<UnavailableItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentProcessed {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Money,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub order_id: Uuid,
    pub amount: Money,
    pub reason: String,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    pub order_id: Uuid,
    pub customer_id: String,
    pub total_amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub customer_id: String,
    pub reason: CancellationReason,
    pub items: Vec<LineItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Money,
}
