//! The one place an order ends. A consumed event (`handlers`) and the timeout sweeper
//! (`timeout`) both call [`end`], so the status change, the timeline entries and the
//! `OrderConfirmed` or `OrderCancelled` it publishes are always written the same way, in
//! the caller's unit of work.
//!
//! # Layout
//! - [`end`]: the status change, the timeline entries and the announcement, at once.
//! - [`cancel`]: a cancellation a customer or an operator asked for (CONTRACT §15), of a
//!   `PENDING` order or of a `COMPLETED` one within the cancel window.
//! - `announcement`: the `OrderConfirmed` or `OrderCancelled` an ending publishes.

mod announcement;
pub mod cancel;

use crate::domain::{OrderStatus, Outcome};
use crate::repo::{self, OrderRow, TimelineEntry};
use announcement::Announcement;
use common::consumer::Incoming;
use common::store::UnitOfWork;
use common::text_enum::TextEnum;
use contract::OrderId;
use uuid::Uuid;

/// What ends the order; it decides what joins the timeline and what the announcement
/// names as its cause (CONTRACT §4 `causation_id`).
#[derive(Debug, Clone, Copy)]
pub enum Cause<'a> {
    /// A consumed event: it joins the timeline (even when the order has ended already)
    /// and causes the announcement.
    Event(&'a Incoming<contract::Event>),
    /// The saga ran out of time. The saga that timed out is the one its `OrderCreated`
    /// started, so that event, when known, causes the announcement.
    Timeout { created: Option<Uuid> },
}

impl Cause<'_> {
    fn caused_by(self) -> Option<Uuid> {
        match self {
            Self::Event(message) => Some(message.envelope.event_id),
            Self::Timeout { created } => created,
        }
    }

    fn consumed(self) -> Option<TimelineEntry> {
        match self {
            Self::Event(message) => Some(TimelineEntry::consumed(message)),
            Self::Timeout { .. } => None,
        }
    }
}

/// Ends a `PENDING` order with `outcome` and announces it, in `uow`. Returns the ended
/// order, or `None` when it had ended already (a consumed event is then only noted in its
/// timeline) or is unknown.
#[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id))]
pub async fn end(
    uow: &mut UnitOfWork,
    order_id: OrderId,
    outcome: Outcome,
    cause: Cause<'_>,
) -> Result<Option<OrderRow>, sqlx::Error> {
    let consumed = cause.consumed();
    // The event the ending will publish is planned now, so the one update that ends the
    // order also records it (and its cause) in the timeline.
    let announcement = Announcement::new();
    let timeline: Vec<TimelineEntry> = consumed
        .iter()
        .cloned()
        .chain([announcement.entry(outcome.status(), cause.caused_by())])
        .collect();
    if let Some(order) = repo::finish(uow.conn(), order_id, outcome, &timeline).await? {
        announcement.publish(uow, &order, cause.caused_by(), OrderStatus::Pending);
        return Ok(Some(order));
    }
    let Some(consumed) = consumed else {
        return Ok(None);
    };
    match repo::note(uow.conn(), order_id, &consumed).await? {
        Some(status) => tracing::info!(
            status = status.as_str(),
            "order already ended; the event changes nothing"
        ),
        None => tracing::warn!("no such order; the event changes nothing"),
    }
    Ok(None)
}
