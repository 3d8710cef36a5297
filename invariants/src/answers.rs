//! The services' answers the checks read (CONTRACT §2, §3), as types. A field the checks
//! need that is missing or of another type makes the whole answer unreadable — an error the
//! checks report — rather than a default that could hide a broken answer.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt;
use uuid::Uuid;

/// An order, as `GET /api/orders/{id}` and `GET /api/orders` answer it (the fields the
/// checks read).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Order {
    pub id: Uuid,
    pub status: OrderStatus,
    pub items: Vec<OrderItem>,
    pub total_amount: f64,
    /// `null` unless `CANCELLED`; `CUSTOMER_CANCELLED` and `OPERATOR_CANCELLED` may follow
    /// a completion (CONTRACT §15).
    pub cancellation_reason: Option<String>,
}

impl Order {
    /// Whether someone asked for its cancellation: only such an order may have completed
    /// before it was cancelled, so only its timeline needs reading.
    pub fn cancelled_on_request(&self) -> bool {
        self.status == OrderStatus::Cancelled
            && matches!(
                self.cancellation_reason.as_deref(),
                Some("CUSTOMER_CANCELLED" | "OPERATOR_CANCELLED")
            )
    }
}

/// One step of an order's timeline, as `GET /api/orders/{id}/events` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TimelineStep {
    pub event_type: String,
}

/// Whether a timeline shows the order completed (`OrderConfirmed`) at some point.
pub fn completed_in(timeline: &[TimelineStep]) -> bool {
    timeline
        .iter()
        .any(|step| step.event_type == "OrderConfirmed")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Completed,
    Cancelled,
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "PENDING",
            Self::Completed => "COMPLETED",
            Self::Cancelled => "CANCELLED",
        })
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderItem {
    pub product_id: String,
    pub quantity: i64,
}

/// An order's payment, as `GET /api/payments/{order_id}` answers it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Payment {
    pub status: PaymentStatus,
    pub amount: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// Attempts are still being made (payment-service shows it; never right once quiet).
    Pending,
    Processed,
    Failed,
    Refunded,
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "PENDING",
            Self::Processed => "PROCESSED",
            Self::Failed => "FAILED",
            Self::Refunded => "REFUNDED",
        })
    }
}

/// One notification sent, as `GET /api/notifications?order_id=` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Notification {
    pub event_type: String,
}

/// One product's stock, as `GET /api/inventory` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Product {
    pub product_id: String,
    pub available: i64,
    pub reserved: i64,
}

/// `product_id → (available, reserved)`.
pub type Stock = BTreeMap<String, (i64, i64)>;

/// The stock of a `GET /api/inventory` answer, by product.
pub fn stock(products: Vec<Product>) -> Stock {
    products
        .into_iter()
        .map(|p| (p.product_id, (p.available, p.reserved)))
        .collect()
}

/// Reads the body `what` answered as a `T`, or says what came instead.
pub fn parse<T: DeserializeOwned>(what: &str, body: &str) -> Result<T, String> {
    serde_json::from_str(body).map_err(|error| format!("{what} answered {body:?}: {error}"))
}

/// Reads an answer already parsed as JSON as a `T`, or says what it was instead.
pub fn read<T: DeserializeOwned>(what: &str, value: &serde_json::Value) -> Result<T, String> {
    T::deserialize(value).map_err(|error| format!("{what} answered {value}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_order_as_the_api_answers_it_is_read() {
        let order: Order = read(
            "order",
            &json!({"id": "3f0c2b4e-8a43-4c52-9d0e-6d1f2a3b4c5d", "customer_id": "c",
                   "items": [{"product_id": "product-A", "quantity": 2}],
                   "total_amount": 150.0, "status": "COMPLETED", "cancellation_reason": null,
                   "created_at": "2025-12-16T10:00:00.000000",
                   "updated_at": "2025-12-16T10:00:00.000000"}),
        )
        .unwrap();
        assert_eq!(order.status, OrderStatus::Completed);
        assert_eq!(order.items[0].quantity, 2);
    }

    #[test]
    fn a_list_that_is_not_an_array_is_unreadable() {
        let error =
            parse::<Vec<Notification>>("GET /api/notifications", r#"{"detail": "x"}"#).unwrap_err();
        assert!(error.contains("GET /api/notifications"), "{error}");
    }

    #[test]
    fn an_unknown_status_or_a_missing_field_is_unreadable() {
        assert!(read::<Payment>("payment", &json!({"status": "VOID", "amount": 1.0})).is_err());
        assert!(read::<Payment>("payment", &json!({"status": "PROCESSED"})).is_err());
        assert!(read::<Vec<Notification>>("notifications", &json!([{"id": 1}])).is_err());
    }
}
