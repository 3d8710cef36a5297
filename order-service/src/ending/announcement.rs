//! The event an order's ending publishes — `OrderConfirmed` or `OrderCancelled` — planned
//! before the order row is updated, so the one update that ends the order also records it
//! in its timeline. Only [`super::end`] uses it.

use crate::domain::OrderStatus;
use crate::repo::{OrderRow, TimelineEntry};
use chrono::{DateTime, Utc};
use common::event::Kind;
use common::store::UnitOfWork;
use common::text_enum::TextEnum;
use contract::events::{CancellationReason, Envelope, Event, OrderCancelled, OrderConfirmed};
use uuid::Uuid;

/// The identity of the `OrderConfirmed` or `OrderCancelled` an ending publishes, chosen
/// before the order row is updated.
pub(super) struct Announcement {
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

    /// Its timeline entry, for an order ending with `status` because of `caused_by`.
    pub fn entry(&self, status: OrderStatus, caused_by: Option<Uuid>) -> TimelineEntry {
        let event_type = match status {
            OrderStatus::Completed => OrderConfirmed::NAME,
            _ => OrderCancelled::NAME,
        };
        TimelineEntry::planned(event_type, self.event_id, self.at, caused_by)
    }

    /// Records `OrderConfirmed` or `OrderCancelled` for an order that has just ended (from
    /// `was`: `PENDING`, or `COMPLETED` for a cancellation after completion), in the unit of
    /// work that ended it.
    pub fn publish(
        self,
        uow: &mut UnitOfWork,
        order: &OrderRow,
        caused_by: Option<Uuid>,
        was: OrderStatus,
    ) -> Option<Envelope> {
        let event = match (order.status, order.cancellation_reason()) {
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
            status = order.status.as_str(),
            reason = order.cancellation_reason().map(CancellationReason::as_str),
            "order {}",
            order.status.as_str()
        );
        if let Some(reason) = order.cancellation_reason() {
            metrics::counter!("orders_cancelled_total", "reason" => reason.as_str()).increment(1);
        }
        if was == OrderStatus::Pending {
            // From the POST to this ending: the saga's latency as the dashboard plots it.
            let saga_seconds = (self.at - order.created_at).to_std().unwrap_or_default();
            metrics::histogram!("saga_duration_seconds", "status" => order.status.as_str())
                .record(saga_seconds.as_secs_f64());
        }
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
