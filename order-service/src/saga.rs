//! What the consumed events do to an order: inventory or payment news ends it, once.

use crate::domain::{OrderStatus, Outcome};
use crate::repo::{self, OrderRow, TimelineEntry};
use chrono::{DateTime, Utc};
use common::amqp::consumer::{Handled, HandlerError, Incoming, MessageHandler};
use common::events::{CancellationReason, Envelope, Event, OrderCancelled, OrderConfirmed};
use common::store::UnitOfWork;
use uuid::Uuid;

/// Ends orders on `InventoryUnavailable`, `PaymentProcessed` and `PaymentFailed`.
pub struct OrderSaga;

impl MessageHandler for OrderSaga {
    async fn apply(
        &self,
        uow: &mut UnitOfWork,
        message: &Incoming,
    ) -> Result<Handled, HandlerError> {
        let message = &message.envelope;
        let outcome = match &message.event {
            Event::InventoryUnavailable(_) => {
                Outcome::Cancelled(CancellationReason::InventoryUnavailable)
            }
            Event::PaymentProcessed(_) => Outcome::Completed,
            Event::PaymentFailed(_) => Outcome::Cancelled(CancellationReason::PaymentFailed),
            _ => {
                tracing::debug!("not an event order-service acts on; ignored");
                return Ok(Handled::Done);
            }
        };
        let order_id = message.event.order_id();
        let consumed = TimelineEntry::of(message);
        // The event the ending will publish is planned now, so the one update that ends
        // the order also records both steps in its timeline.
        let announcement = Announcement::new();
        let planned = announcement.entry(outcome.status());
        match repo::finish(uow.conn(), order_id, outcome, &[consumed.clone(), planned]).await? {
            Some(order) => {
                announcement.publish(uow, &order, Some(message.event_id));
            }
            None => match repo::note(uow.conn(), order_id, &consumed).await? {
                Some(status) => {
                    tracing::info!(%status, "order already ended; the event changes nothing")
                }
                None => tracing::warn!("no such order; the event changes nothing"),
            },
        }
        Ok(Handled::Done)
    }
}

/// The identity of the `OrderConfirmed` or `OrderCancelled` an ending publishes, chosen
/// before the order row is updated.
pub struct Announcement {
    event_id: Uuid,
    at: DateTime<Utc>,
}

impl Announcement {
    pub fn new() -> Self {
        Self {
            event_id: Uuid::now_v7(),
            at: Utc::now(),
        }
    }

    /// Its timeline entry, for an order ending with `status`.
    pub fn entry(&self, status: OrderStatus) -> TimelineEntry {
        let event_type = match status {
            OrderStatus::Completed => "OrderConfirmed",
            _ => "OrderCancelled",
        };
        TimelineEntry::planned(event_type, self.event_id, self.at)
    }

    /// Records `OrderConfirmed` or `OrderCancelled` for an order that has just ended, in the
    /// unit of work that ended it.
    pub fn publish(
        self,
        uow: &mut UnitOfWork,
        order: &OrderRow,
        caused_by: Option<Uuid>,
    ) -> Option<Envelope> {
        let event = match (order.status(), order.cancellation_reason()) {
            (OrderStatus::Completed, _) => Event::OrderConfirmed(OrderConfirmed {
                order_id: order.id,
                customer_id: order.customer_id.clone(),
                total_amount: order.total(),
            }),
            (OrderStatus::Cancelled, Some(reason)) => Event::OrderCancelled(OrderCancelled {
                order_id: order.id,
                customer_id: order.customer_id.clone(),
                reason,
                items: order.items.0.clone(),
            }),
            _ => return None,
        };
        tracing::info!(
            order_id = %order.id,
            status = order.status().as_str(),
            reason = order.cancellation_reason().map(CancellationReason::as_str),
            "order {}",
            order.status().as_str()
        );
        // From the POST to this ending: the saga's latency as the dashboard plots it.
        let saga_seconds = (self.at - order.created_at).to_std().unwrap_or_default();
        metrics::histogram!("saga_duration_seconds", "status" => order.status().as_str())
            .record(saga_seconds.as_secs_f64());
        let envelope = Envelope {
            event_id: self.event_id,
            event,
            timestamp: self.at,
        };
        Some(uow.publish_envelope(envelope, caused_by))
    }
}

impl Default for Announcement {
    fn default() -> Self {
        Self::new()
    }
}
